//! `tandem run` in a namespace, and its control socket.

use super::json::Json;
use super::{Netns, Process};
use std::time::Duration;

/// How long start-up may take.
const T: Duration = Duration::from_secs(20);

/// A Tandem gateway running in `ns` from the TOML `config`.
pub struct Tandem {
    pub process: Process,
    pub socket: String,
}

impl Tandem {
    /// Starts a gateway and waits for its data path.
    pub fn start(ns: &Netns, config: &str) -> Tandem {
        Tandem::start_until(ns, config, "data path up")
    }

    /// Starts `tandem run` in `ns` and waits until its log shows `ready`.
    pub fn start_until(ns: &Netns, config: &str, ready: &str) -> Tandem {
        let path = ns.dir().join("gateway.toml");
        let socket = ns.dir().join("tandem.sock").to_str().expect("UTF-8 path").to_owned();
        let config = format!("{config}\n[control]\nsocket = {socket:?}\n");
        std::fs::write(&path, config).expect("write gateway.toml");
        let path = path.to_str().expect("UTF-8 path").to_owned();
        let bin = env!("CARGO_BIN_EXE_tandem");
        let check = ns.exec(&[bin, "check", "-c", &path]);
        assert!(check.is_ok(), "tandem check refused the config: {check:?}");
        let mut process =
            ns.spawn_env(&[bin, "run", "-c", &path], &[("RUST_LOG", "debug".as_ref())]).expect("tandem run");
        super::wait_for(&format!("tandem: {ready}"), T, || process.log().contains(ready))
            .unwrap_or_else(|e| panic!("{e}\n{}", process.log()));
        assert!(process.is_running(), "tandem exited:\n{}", process.log());
        Tandem { process, socket }
    }

    /// Runs a control command (`tandem sas --json`...) and returns its
    /// output, which must be JSON.
    pub fn ctl(&self, args: &[&str]) -> Json {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(args)
            .args(["--socket", &self.socket, "--json"])
            .output()
            .expect("run the tandem CLI");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "tandem {args:?} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Json::parse(&text).unwrap_or_else(|e| panic!("tandem {args:?}: not JSON ({e}): {text}"))
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// SIGTERM, then the exit status must be success.
    pub fn stop(mut self) -> String {
        self.process.signal("TERM").expect("SIGTERM");
        let status = self.process.wait_timeout(Duration::from_secs(10)).expect("tandem exits on SIGTERM");
        let log = self.process.log();
        assert!(status.success(), "tandem failed ({status}):\n{log}");
        log
    }
}
