//! Reading the files a configuration names: regular files only, of bounded
//! size, and for secrets with no access for group or others.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use zeroize::Zeroizing;

/// The largest configuration or secrets file read.
pub(super) const MAX_CONFIG_LEN: u64 = 4 << 20;
/// The largest certificate or key file read.
pub(super) const MAX_PEM_LEN: u64 = 1 << 20;

/// Why a file could not be used.
#[derive(Debug)]
pub(super) enum FileError {
    /// Opening or reading failed.
    Io(io::Error),
    /// Not a regular file (a directory, a device, a FIFO...).
    NotAFile,
    /// Larger than allowed.
    TooLarge(u64),
    /// A secret file that group or others may access; its mode.
    Insecure(u32),
}

impl FileError {
    /// The error as an `io::Error`, for [`ConfigError::Read`](super::ConfigError::Read).
    pub(super) fn into_io(self) -> io::Error {
        match self {
            Self::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

impl core::fmt::Display for FileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::NotAFile => f.write_str("not a regular file"),
            Self::TooLarge(limit) => write!(f, "larger than {limit} bytes"),
            Self::Insecure(mode) => {
                write!(f, "mode {mode:04o} lets group or others access it; run `chmod 600` on it")
            }
        }
    }
}

/// A file's contents, zeroized when dropped, and its permission bits.
pub(super) struct Contents {
    /// The bytes.
    pub(super) bytes: Zeroizing<Vec<u8>>,
    /// Permission bits (`st_mode & 0o7777`; 0 where there are none).
    pub(super) mode: u32,
}

/// Reads a regular file of at most `limit` bytes; with `secret`, refuses
/// one that group or others may access (before reading it).
pub(super) fn read(path: &Path, limit: u64, secret: bool) -> Result<Contents, FileError> {
    // A FIFO would block `open`, a device would never end: look first.
    if !std::fs::metadata(path).map_err(FileError::Io)?.is_file() {
        return Err(FileError::NotAFile);
    }
    let file = File::open(path).map_err(FileError::Io)?;
    let meta = file.metadata().map_err(FileError::Io)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile);
    }
    let mode = mode_of(&meta);
    if secret && mode & 0o077 != 0 {
        return Err(FileError::Insecure(mode));
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge(limit));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0)));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(FileError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge(limit));
    }
    Ok(Contents { bytes, mode })
}

/// Permission bits of a file.
#[cfg(unix)]
fn mode_of(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Permission bits of a file: none off Unix.
#[cfg(not(unix))]
fn mode_of(_: &std::fs::Metadata) -> u32 {
    0
}

/// Reads a PEM file: at most [`MAX_PEM_LEN`], text, with a `-----BEGIN`
/// line. Returns the text or what is wrong, for a diagnostic.
pub(super) fn read_pem(path: &Path, secret: bool) -> Result<Zeroizing<String>, String> {
    let contents = read(path, MAX_PEM_LEN, secret).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = core::str::from_utf8(&contents.bytes).map_err(|_| {
        format!("{}: not a PEM file (binary data; DER must be converted to PEM)", path.display())
    })?;
    if !text.contains("-----BEGIN ") {
        return Err(format!("{}: not a PEM file (no \"-----BEGIN\" line)", path.display()));
    }
    Ok(Zeroizing::new(text.to_owned()))
}
