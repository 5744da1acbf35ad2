//! The control socket's server side: a task accepts connections, reads
//! one request line each and hands it to the event loop, which owns all
//! state and answers through a oneshot channel.

use super::GatewayError;
use crate::control::{MAX_LINE, Reply, Request};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

/// A request with the way back to its client.
pub(crate) type Call = (Request, oneshot::Sender<Reply>);

/// The listening socket; removed from the file system on drop.
pub(crate) struct ControlSocket {
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` (mode 0600, replacing a stale socket) and feeds calls
/// into the returned channel.
pub(crate) fn listen(path: &Path) -> Result<(ControlSocket, mpsc::Receiver<Call>), GatewayError> {
    let ctx = |what: &str, e| GatewayError::io(format!("{what} {}", path.display()), e);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ctx("creating the directory of", e))?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(ctx("removing a stale", e)),
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(|e| ctx("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| ctx("chmod", e))?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(stream, tx).await {
                    debug!("control connection: {e}");
                }
            });
        }
    });
    Ok((ControlSocket { path: path.to_owned() }, rx))
}

async fn serve(stream: tokio::net::UnixStream, calls: mpsc::Sender<Call>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_LINE as u64)).read_line(&mut line).await?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            let (tx, rx) = oneshot::channel();
            if calls.send((request, tx)).await.is_err() {
                return Ok(());
            }
            rx.await.unwrap_or(Reply::Error { message: "the gateway is stopping".into() })
        }
        Err(e) => Reply::Error { message: format!("bad request: {e}") },
    };
    let mut out = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
    out.push('\n');
    write.write_all(out.as_bytes()).await
}
