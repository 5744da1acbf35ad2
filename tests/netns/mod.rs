//! Network-namespace test harness shared by the interop tests.
//!
//! Everything here shells out through `std::process::Command` (`ip`, `sysctl`,
//! `iptables`/`nft`, `kill`): no extra crates, no `unsafe`. Every command has a
//! time limit, every namespace and process is owned by a guard whose `Drop`
//! removes it, so a panicking test leaves nothing behind.
//!
//! * [`Netns`]: one namespace with a unique name
//!   (`tdm-<test>-<pid>-<seq>-<role>`) and a private scratch directory
//!   (`/tmp/tdm/<namespace>/`); `exec`, `spawn` ([`Process`] guard), addresses,
//!   routes, sysctls, forwarding, masquerading.
//! * [`veth`], [`Netns::bridge`]: links (bridges with STP and multicast
//!   snooping off).
//! * [`Topology`]: ready-made client / (NAT) / gateway / server and cluster
//!   layouts with the addresses of `../shared/lab`.
//! * [`wait_for`], [`wait_for_some`]: bounded polling.
//! * [`require_root`], [`require_tool`]: skip checks with a clear message; set
//!   `TANDEM_NETNS_REQUIRED=1` to make a missing prerequisite a failure instead
//!   (CI does, after `.ci/install-interop.sh`).
//! * `TANDEM_NETNS_KEEP=1` keeps the scratch directories (logs, configs) of
//!   passing tests too; those of failing tests are always kept and printed.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod iperf;
pub mod json;
pub mod strongswan;
pub mod tandem;

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// Default limit for one command run through [`run`] / [`Netns::exec`].
pub const CMD_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of every namespace this harness creates.
pub const NS_PREFIX: &str = "tdm";

/// Root of the per-namespace scratch directories.
pub const SCRATCH_ROOT: &str = "/tmp/tdm";

// ---------------------------------------------------------------------------
// Errors

/// A harness error: a message that already carries the context (command line,
/// exit status, stderr). `Debug` prints it verbatim so `expect` output stays
/// readable.
pub struct Error {
    msg: String,
}

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error { msg: msg.into() }
    }

    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Prepends context: "`ctx`: `self`".
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        Error { msg: format!("{ctx}: {}", self.msg) }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::new(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

// ---------------------------------------------------------------------------
// Prerequisites

fn env_flag(name: &str) -> bool {
    std::env::var(name).map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

/// Prints the skip message, or panics with it when `TANDEM_NETNS_REQUIRED=1`.
fn skip(msg: &str) -> bool {
    if env_flag("TANDEM_NETNS_REQUIRED") {
        panic!("TANDEM_NETNS_REQUIRED is set but {msg}");
    }
    eprintln!("skipping: {msg}");
    false
}

/// Effective uid from `/proc/self/status` (std has no `geteuid`).
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Finds an executable in `$PATH`, then in the sbin directories (which a
/// non-login root shell may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn tool(name: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| PathBuf::from(name))
}

/// True when the test can create namespaces: running as root, `ip` present
/// and `ip netns` usable. Otherwise prints "skipping: ..." and returns false
/// (or panics when `TANDEM_NETNS_REQUIRED=1`).
pub fn require_root() -> bool {
    match effective_uid() {
        Some(0) => {}
        Some(uid) => return skip(&format!("needs root and `ip netns` (running as uid {uid})")),
        None => return skip("needs root and `ip netns` (cannot read /proc/self/status)"),
    }
    if find_tool("ip").is_none() {
        return skip("needs root and `ip netns` (`ip` from iproute2 is not installed)");
    }
    match run(Command::new(tool("ip")).args(["netns", "list"]), Duration::from_secs(10)) {
        Ok(_) => true,
        Err(e) => skip(&format!("needs root and `ip netns` (`ip netns list` failed: {e})")),
    }
}

/// True when `name` is installed; otherwise prints "skipping: ..." (or panics
/// when `TANDEM_NETNS_REQUIRED=1`).
pub fn require_tool(name: &str) -> bool {
    if find_tool(name).is_some() {
        true
    } else {
        skip(&format!("needs `{name}` (install the interop packages with .ci/install-interop.sh)"))
    }
}

/// True when `iptables` or `nft` is there for [`Netns::masquerade`].
pub fn require_nat() -> bool {
    if find_tool("iptables").is_some() || find_tool("nft").is_some() {
        true
    } else {
        skip("needs `iptables` or `nft` for the NAT namespace (install with .ci/install-interop.sh)")
    }
}

/// True when `iptables` or `nft` is there for [`Netns::block_udp_port`].
pub fn require_packet_filter() -> bool {
    if find_tool("iptables").is_some() || find_tool("nft").is_some() {
        true
    } else {
        skip("needs `iptables` or `nft` to filter packets (install with .ci/install-interop.sh)")
    }
}

/// [`require_root`] and every tool of `tools`.
pub fn require(tools: &[&str]) -> bool {
    require_root() && tools.iter().all(|t| require_tool(t))
}

// ---------------------------------------------------------------------------
// Running commands with a time limit

fn cmdline(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains(char::is_whitespace) {
            s.push_str(&format!("'{a}'"));
        } else {
            s.push_str(&a);
        }
    }
    s
}

/// Reads a pipe to its end on a thread; the result arrives on the channel.
fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// The output of a [`reader`]; empty if a daemonized grandchild (in another
/// process group) still holds the pipe open after `patience`.
fn collect(rx: Option<mpsc::Receiver<Vec<u8>>>, patience: Duration) -> Vec<u8> {
    rx.and_then(|rx| rx.recv_timeout(patience).ok()).unwrap_or_default()
}

/// Sends `signal` (e.g. "TERM", "KILL") to one pid, or to a process group when
/// `group` is set, through `kill(1)` (std can't signal without `unsafe`).
fn send_signal(pid: u32, signal: &str, group: bool) -> bool {
    let target = if group { format!("-{pid}") } else { pid.to_string() };
    Command::new(tool("kill"))
        .args(["-s", signal, "--", &target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// State letter of `/proc/<pid>/stat` ('Z' for a zombie), None when gone.
fn proc_state(pid: u32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rfind(')')?;
    stat[after + 1..].trim_start().chars().next()
}

/// True once the (unreaped) child has exited: it is a zombie or gone. Reading
/// /proc instead of `try_wait` keeps the pid (and its process group id)
/// reserved until we reap it, so signalling the group can never hit a
/// recycled id.
fn has_exited(child: &mut Child) -> bool {
    match proc_state(child.id()) {
        Some('Z') | None => true,
        Some(_) => false,
    }
}

/// Kills the whole process group of `child` (it leads its own group), then
/// reaps it.
fn kill_group_and_reap(child: &mut Child) -> Option<ExitStatus> {
    send_signal(child.id(), "KILL", true);
    let _ = child.kill();
    child.wait().ok()
}

/// Runs `cmd` (in its own process group) for at most `timeout`; on timeout
/// the group is killed. Errors on spawn failure, timeout or non-zero exit,
/// with the command line, status, stdout and stderr in the message.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let out = run_unchecked(cmd, timeout)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(Error::new(format!(
            "`{}` failed ({}){}{}",
            cmdline(cmd),
            out.status,
            show("stderr", &out.stderr),
            show("stdout", &out.stdout),
        )))
    }
}

fn show(what: &str, bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end();
    if s.is_empty() {
        String::new()
    } else {
        // keep error messages bounded: the tail is what matters
        let tail: Vec<&str> = s.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("\n--- {what}:\n{}", tail.join("\n"))
    }
}

/// Like [`run`] but returns the output whatever the exit status; errors only
/// on spawn failure or timeout.
pub fn run_unchecked(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    use std::os::unix::process::CommandExt;
    let line = cmdline(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::new(format!("cannot run `{line}`: {e}")))?;
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if has_exited(&mut child) {
            // the group may hold stragglers that keep our pipes open
            send_signal(child.id(), "KILL", true);
            break child.wait()?;
        }
        if Instant::now() >= deadline {
            kill_group_and_reap(&mut child);
            let stdout = collect(out, Duration::from_secs(2));
            let stderr = collect(err, Duration::from_secs(2));
            return Err(Error::new(format!(
                "`{line}` timed out after {:.1}s (killed){}{}",
                timeout.as_secs_f64(),
                show("stderr", &stderr),
                show("stdout", &stdout)
            )));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    let stdout = collect(out, Duration::from_secs(5));
    let stderr = collect(err, Duration::from_secs(5));
    Ok(Output { status, stdout, stderr })
}

/// Runs a host command (not in a namespace) given as words; returns stdout.
pub fn host(args: &[&str]) -> Result<String> {
    let (prog, rest) = args.split_first().ok_or_else(|| Error::new("host: empty command"))?;
    let out = run(Command::new(tool(prog)).args(rest), CMD_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

// ---------------------------------------------------------------------------
// Polling

/// Polls `cond` (20 ms doubling up to 250 ms) until it holds, for at most
/// `timeout`. The error names `what`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    wait_for_some(what, timeout, || cond().then_some(())).map(|_| ())
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub fn wait_for_some<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(Error::new(format!(
                "timed out after {:.1}s waiting for {what}",
                elapsed.as_secs_f64()
            )));
        }
        thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------
// Process guard

/// A process started by [`Netns::spawn`]. It leads its own process group;
/// dropping the guard kills the group (SIGKILL) and reaps it. stdout and
/// stderr go to a log file ([`Process::log`]).
pub struct Process {
    child: Option<Child>,
    pid: u32,
    what: String,
    log_path: PathBuf,
    status: Option<ExitStatus>,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.what
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Its stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// True while it has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => !has_exited(c),
            None => false,
        }
    }

    /// Sends a signal ("TERM", "INT", "HUP", "KILL", ...) to the process
    /// (not the group) unless it already exited.
    pub fn signal(&mut self, signal: &str) -> Result<()> {
        if !self.is_running() {
            return Err(Error::new(format!("`{}` is not running", self.what)));
        }
        if send_signal(self.pid, signal, false) {
            Ok(())
        } else {
            Err(Error::new(format!("kill -{signal} {} failed", self.pid)))
        }
    }

    fn reap(&mut self) -> Option<ExitStatus> {
        if let Some(mut c) = self.child.take() {
            // kill leftovers in its group while the pgid is still reserved
            send_signal(self.pid, "KILL", true);
            self.status = c.wait().ok();
        }
        self.status
    }

    /// Waits at most `timeout` for it to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if self.child.is_some() {
            let what = format!("`{}` to exit", self.what);
            let child = self.child.as_mut().ok_or_else(|| Error::new("no child"))?;
            wait_for(&what, timeout, || has_exited(child))?;
        }
        self.reap().ok_or_else(|| Error::new(format!("cannot reap `{}`", self.what)))
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL to the group. Returns the
    /// exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.child.is_none() {
            return self.status;
        }
        if self.is_running() {
            send_signal(self.pid, "TERM", false);
            let child = self.child.as_mut()?;
            let _ = wait_for("exit after SIGTERM", grace, || has_exited(child));
        }
        if self.child.as_mut().is_some_and(|c| !has_exited(c)) {
            eprintln!("netns: `{}` (pid {}) ignored SIGTERM, killing it", self.what, self.pid);
            return self.kill();
        }
        self.reap()
    }

    /// Kills the group at once (SIGKILL).
    pub fn kill(&mut self) -> Option<ExitStatus> {
        if let Some(mut c) = self.child.take() {
            self.status = kill_group_and_reap(&mut c);
        }
        self.status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// Namespaces

static SEQ: AtomicU32 = AtomicU32::new(0);
static GC: Once = Once::new();

/// `tdm-<test>-<pid>-<seq>`: unique per process (pid) and per call (seq). The
/// test name is reduced to `[a-z0-9_]` and at most 20 characters, so unix
/// socket paths under the scratch directory stay short.
pub fn unique_prefix(test: &str) -> String {
    let mut t: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    t.truncate(20);
    if t.is_empty() {
        t.push('t');
    }
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{NS_PREFIX}-{t}-{}-{seq}", std::process::id())
}

/// Removes namespaces of earlier runs whose test process is gone (a test
/// killed by SIGKILL cannot run its `Drop`s), after killing what still runs
/// inside them: only this harness creates `tdm-<test>-<pid>-...` namespaces,
/// so those processes are leftovers of that dead test (its charons, iperf3
/// servers, ...).
fn collect_stale_namespaces() {
    let Ok(list) = run(Command::new(tool("ip")).args(["netns", "list"]), Duration::from_secs(10)) else {
        return;
    };
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let parts: Vec<&str> = name.split('-').collect();
        if parts.len() < 5 || parts[0] != NS_PREFIX {
            continue;
        }
        let Ok(pid) = parts[2].parse::<u32>() else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pids = ns_pids(name);
        if !pids.is_empty() {
            eprintln!("netns: stale namespace {name} (test pid {pid} is gone): killing {pids:?}");
            for p in &pids {
                send_signal(*p, "KILL", false);
            }
            if wait_for("stale processes to exit", Duration::from_secs(3), || ns_pids(name).is_empty())
                .is_err()
            {
                eprintln!("netns: stale namespace {name} still holds processes; leaving it");
                continue;
            }
        }
        let _ = run(Command::new(tool("ip")).args(["netns", "del", name]), Duration::from_secs(10));
        let _ = fs::remove_dir_all(Path::new(SCRATCH_ROOT).join(name));
    }
}

fn ns_pids(name: &str) -> Vec<u32> {
    run_unchecked(Command::new(tool("ip")).args(["netns", "pids", name]), Duration::from_secs(10))
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect()
        })
        .unwrap_or_default()
}

/// One network namespace. `Drop` kills whatever still runs inside it (these
/// are all ours: the name is unique to this test), deletes it and removes its
/// scratch directory (kept, and printed, when the test panicked or
/// `TANDEM_NETNS_KEEP=1`).
pub struct Netns {
    name: String,
    role: String,
    dir: PathBuf,
    spawned: AtomicU32,
}

impl Netns {
    /// Creates `<prefix>-<role>` (see [`unique_prefix`]) with `lo` up and
    /// IPv6 disabled (quiet captures, no DAD; see [`Netns::enable_ipv6`]).
    pub fn new(prefix: &str, role: &str) -> Result<Netns> {
        GC.call_once(collect_stale_namespaces);
        let name = format!("{prefix}-{role}");
        let dir = Path::new(SCRATCH_ROOT).join(&name);
        run(Command::new(tool("ip")).args(["netns", "add", &name]), CMD_TIMEOUT)
            .map_err(|e| e.context(format!("creating namespace {name}")))?;
        // From here on Drop cleans up.
        let ns = Netns { name, role: role.to_string(), dir, spawned: AtomicU32::new(0) };
        fs::create_dir_all(&ns.dir)?;
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.disable_ipv6()?;
        Ok(ns)
    }

    /// A single namespace for `test` (prefix made unique here).
    pub fn for_test(test: &str, role: &str) -> Result<Netns> {
        Netns::new(&unique_prefix(test), role)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn role(&self) -> &str {
        &self.role
    }

    /// Private scratch directory of this namespace (configs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ns_command(&self, args: &[&str]) -> Result<Command> {
        let (prog, rest) = args.split_first().ok_or_else(|| Error::new("empty command"))?;
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &self.name]).arg(tool(prog)).args(rest);
        Ok(cmd)
    }

    /// `ip netns exec <ns> args...` with [`CMD_TIMEOUT`]; stdout on success,
    /// an error naming the namespace, command, status and stderr otherwise.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        self.exec_timeout(args, CMD_TIMEOUT)
    }

    pub fn exec_timeout(&self, args: &[&str], timeout: Duration) -> Result<String> {
        let out =
            run(&mut self.ns_command(args)?, timeout).map_err(|e| e.context(format!("in {}", self.name)))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs with environment variables set.
    pub fn exec_env(&self, args: &[&str], env: &[(&str, &OsStr)], timeout: Duration) -> Result<String> {
        let mut cmd = self.ns_command(args)?;
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd, timeout).map_err(|e| e.context(format!("in {}", self.name)))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The full output whatever the exit status (errors only on timeout).
    pub fn exec_output(&self, args: &[&str], timeout: Duration) -> Result<Output> {
        run_unchecked(&mut self.ns_command(args)?, timeout)
            .map_err(|e| e.context(format!("in {}", self.name)))
    }

    /// True when the command exits 0 within `timeout`.
    pub fn succeeds(&self, args: &[&str], timeout: Duration) -> bool {
        self.exec_output(args, timeout).map(|o| o.status.success()).unwrap_or(false)
    }

    /// Starts a long-running command in the namespace; stdout and stderr go to
    /// a log file in [`Netns::dir`]. The guard kills it (and its process
    /// group) on drop.
    pub fn spawn(&self, args: &[&str]) -> Result<Process> {
        self.spawn_env(args, &[])
    }

    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Result<Process> {
        let mut cmd = self.ns_command(args)?;
        for (k, v) in env {
            cmd.env(k, v);
        }
        let prog =
            Path::new(args[0]).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let log_path = self.dir.join(format!("{prog}-{n}.log"));
        spawn_logged(&mut cmd, log_path).map_err(|e| e.context(format!("in {}", self.name)))
    }

    /// `ip -n <ns> args...`
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let out = run(Command::new(tool("ip")).arg("-n").arg(&self.name).args(args), CMD_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `sysctl -qw key=value` inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec(&["sysctl", "-qw", &format!("{key}={value}")]).map(|_| ())
    }

    /// Reads a sysctl inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        Ok(self.exec(&["sysctl", "-n", key])?.trim().to_string())
    }

    pub fn disable_ipv6(&self) -> Result<()> {
        if Path::new("/proc/sys/net/ipv6").exists() {
            self.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            self.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        Ok(())
    }

    pub fn enable_ipv6(&self) -> Result<()> {
        self.sysctl("net.ipv6.conf.all.disable_ipv6", "0")?;
        self.sysctl("net.ipv6.conf.default.disable_ipv6", "0")
    }

    pub fn link_up(&self, ifname: &str) -> Result<()> {
        self.ip(&["link", "set", ifname, "up"]).map(|_| ())
    }

    pub fn set_mtu(&self, ifname: &str, mtu: u32) -> Result<()> {
        self.ip(&["link", "set", ifname, "mtu", &mtu.to_string()]).map(|_| ())
    }

    /// `ip addr add <cidr> dev <ifname>`, e.g. `addr_add("eth0", "192.0.2.10/24")`.
    pub fn addr_add(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", ifname]).map(|_| ())
    }

    pub fn addr_replace(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "replace", cidr, "dev", ifname]).map(|_| ())
    }

    pub fn addr_del(&self, ifname: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "del", cidr, "dev", ifname]).map(|_| ())
    }

    /// `ip route replace <dest> via <via>` (`dest` may be "default").
    pub fn route_add(&self, dest: &str, via: &str) -> Result<()> {
        self.ip(&["route", "replace", dest, "via", via]).map(|_| ())
    }

    /// `ip route replace <dest> dev <ifname>`.
    pub fn route_dev(&self, dest: &str, ifname: &str) -> Result<()> {
        self.ip(&["route", "replace", dest, "dev", ifname]).map(|_| ())
    }

    pub fn route_del(&self, dest: &str) -> Result<()> {
        self.ip(&["route", "del", dest]).map(|_| ())
    }

    pub fn default_route(&self, via: &str) -> Result<()> {
        self.route_add("default", via)
    }

    /// `ip route get <dst>` (which way a packet would go).
    pub fn route_get(&self, dst: &str) -> Result<String> {
        self.ip(&["route", "get", dst])
    }

    /// IPv4 forwarding on, reverse-path filtering off (all interfaces, also
    /// those created later).
    pub fn enable_forwarding(&self) -> Result<()> {
        self.sysctl("net.ipv4.ip_forward", "1")?;
        self.exec(&["sh", "-c", "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > \"$f\"; done"])
            .map(|_| ())
    }

    /// Source NAT of everything leaving `out_if` to that interface's address
    /// (iptables MASQUERADE, or nft when iptables is missing or
    /// `TANDEM_NETNS_NAT=nft`). Source ports are kept when free, as most home
    /// routers do.
    pub fn masquerade(&self, out_if: &str) -> Result<()> {
        self.masquerade_with(out_if, false)
    }

    /// Like [`Netns::masquerade`] but with randomized source ports, so IKE
    /// from port 500 arrives from some other port (a harsher NAT).
    pub fn masquerade_random_ports(&self, out_if: &str) -> Result<()> {
        self.masquerade_with(out_if, true)
    }

    fn masquerade_with(&self, out_if: &str, random: bool) -> Result<()> {
        if use_iptables() {
            let mut args = vec!["iptables", "-w", "5", "-t", "nat", "-A", "POSTROUTING", "-o", out_if];
            args.extend(["-j", "MASQUERADE"]);
            if random {
                args.push("--random-fully");
            }
            self.exec(&args).map(|_| ())
        } else if find_tool("nft").is_some() {
            let flags = if random { " fully-random" } else { "" };
            let script = format!(
                "add table ip tdmnat\n\
                 add chain ip tdmnat post {{ type nat hook postrouting priority srcnat; }}\n\
                 add rule ip tdmnat post oifname \"{out_if}\" masquerade{flags}\n"
            );
            let file = self.dir.join("masquerade.nft");
            fs::write(&file, script)?;
            self.exec(&["nft", "-f", &file.to_string_lossy()]).map(|_| ())
        } else {
            Err(Error::new("masquerade needs iptables or nft (neither is installed)"))
        }
    }

    /// Drops every UDP datagram to `port` that enters or leaves this
    /// namespace's stack (a sync partition: the AF_PACKET sockets, which
    /// see frames before netfilter, are not affected). iptables, or nft
    /// like [`Netns::masquerade`]. [`Netns::unblock_udp_port`] undoes it.
    pub fn block_udp_port(&self, port: u16) -> Result<()> {
        let p = port.to_string();
        if use_iptables() {
            for chain in ["INPUT", "OUTPUT"] {
                self.exec(&["iptables", "-w", "5", "-I", chain, "-p", "udp", "--dport", &p, "-j", "DROP"])?;
            }
            Ok(())
        } else if find_tool("nft").is_some() {
            let script = format!(
                "add table ip tdmblock{p}\n\
                 add chain ip tdmblock{p} in {{ type filter hook input priority filter; }}\n\
                 add chain ip tdmblock{p} out {{ type filter hook output priority filter; }}\n\
                 add rule ip tdmblock{p} in udp dport {p} drop\n\
                 add rule ip tdmblock{p} out udp dport {p} drop\n"
            );
            let file = self.dir.join(format!("block-{p}.nft"));
            fs::write(&file, script)?;
            self.exec(&["nft", "-f", &file.to_string_lossy()]).map(|_| ())
        } else {
            Err(Error::new("blocking a port needs iptables or nft (neither is installed)"))
        }
    }

    /// Removes what [`Netns::block_udp_port`] added.
    pub fn unblock_udp_port(&self, port: u16) -> Result<()> {
        let p = port.to_string();
        if use_iptables() {
            for chain in ["INPUT", "OUTPUT"] {
                self.exec(&["iptables", "-w", "5", "-D", chain, "-p", "udp", "--dport", &p, "-j", "DROP"])?;
            }
            Ok(())
        } else {
            self.exec(&["nft", "delete", "table", "ip", &format!("tdmblock{p}")]).map(|_| ())
        }
    }

    /// A bridge `name` in this namespace with STP, forward delay and multicast
    /// snooping off (so frames to multicast MACs flood to every port), bridged
    /// frames kept out of netfilter, and `ports` (interfaces of this
    /// namespace) enslaved and up.
    pub fn bridge(&self, name: &str, ports: &[&str]) -> Result<()> {
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
            "mcast_querier",
            "0",
        ])?;
        self.link_up(name)?;
        for key in ["iptables", "ip6tables", "arptables"] {
            // per-namespace since Linux 5.3; best effort
            let _ = self.sysctl(&format!("net.bridge.bridge-nf-call-{key}"), "0");
        }
        for port in ports {
            self.bridge_add_port(name, port)?;
        }
        Ok(())
    }

    pub fn bridge_add_port(&self, bridge: &str, port: &str) -> Result<()> {
        self.ip(&["link", "set", port, "master", bridge])?;
        self.link_up(port)
    }

    /// Pids of every process inside the namespace.
    pub fn pids(&self) -> Vec<u32> {
        ns_pids(&self.name)
    }

    /// `ip -s link show <ifname>` (counters), for diagnostics.
    pub fn link_stats(&self, ifname: &str) -> Result<String> {
        self.ip(&["-s", "link", "show", ifname])
    }

    /// Addresses, routes (main and table 220) and rules, for failure reports.
    pub fn describe(&self) -> String {
        let mut s = format!("== {}\n", self.name);
        for args in
            [&["-br", "addr"][..], &["route"][..], &["route", "show", "table", "220"][..], &["rule"][..]]
        {
            s.push_str(&format!("$ ip {}\n", args.join(" ")));
            s.push_str(&self.ip(args).unwrap_or_else(|e| format!("({e})\n")));
        }
        s
    }

    /// `ping -c count -W 1 -i 0.2 dst` from this namespace; the error
    /// carries ping's output.
    pub fn ping(&self, dst: &str, count: u32) -> Result<String> {
        let c = count.to_string();
        let timeout = Duration::from_secs(5 + u64::from(count));
        self.exec_timeout(&["ping", "-n", "-q", "-c", &c, "-W", "1", "-i", "0.2", dst], timeout)
    }

    /// Pings until one echo comes back (at most `timeout`).
    pub fn wait_ping(&self, dst: &str, timeout: Duration) -> Result<()> {
        wait_for(&format!("ping {dst} from {}", self.name), timeout, || {
            self.succeeds(&["ping", "-n", "-q", "-c", "1", "-W", "1", dst], Duration::from_secs(3))
        })
    }
}

/// iptables or nft for the packet filter helpers: `TANDEM_NETNS_NAT=nft|iptables`
/// picks the tool; by default iptables when it is installed.
fn use_iptables() -> bool {
    match std::env::var("TANDEM_NETNS_NAT").unwrap_or_default().as_str() {
        "nft" => false,
        "iptables" => true,
        _ => find_tool("iptables").is_some(),
    }
}

fn spawn_logged(cmd: &mut Command, log_path: PathBuf) -> Result<Process> {
    use std::os::unix::process::CommandExt;
    let what = cmdline(cmd);
    let log = File::create(&log_path).map_err(|e| Error::new(format!("{}: {e}", log_path.display())))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::new(format!("cannot start `{what}`: {e}")))?;
    Ok(Process { pid: child.id(), child: Some(child), what, log_path, status: None })
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Normally every Process guard is gone by now; whatever is left in
        // this uniquely named namespace was started by this test.
        let mut left = self.pids();
        if !left.is_empty() {
            eprintln!("netns: killing processes left in {}: {left:?}", self.name);
            for pid in &left {
                send_signal(*pid, "KILL", false);
            }
            let _ = wait_for("processes to leave the namespace", Duration::from_secs(3), || {
                left = self.pids();
                left.is_empty()
            });
        }
        let panicking = thread::panicking();
        if panicking {
            // addresses, routes and rules at the time of the failure
            let _ = fs::write(self.dir.join("state.txt"), self.describe());
        }
        let file = Path::new("/run/netns").join(&self.name);
        let deleted = wait_for("namespace deletion", Duration::from_secs(5), || {
            let _ = run_unchecked(Command::new(tool("ip")).args(["netns", "del", &self.name]), CMD_TIMEOUT);
            !file.exists()
        });
        if let Err(e) = deleted {
            eprintln!("netns: could not delete {}: {e}", self.name);
        }
        if panicking || env_flag("TANDEM_NETNS_KEEP") {
            eprintln!("netns: kept {} ({})", self.dir.display(), self.name);
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// [`Netns::bridge`] as a free function: a bridge `name` in `ns` with STP and
/// multicast snooping off, `ports` enslaved.
pub fn bridge(ns: &Netns, name: &str, ports: &[&str]) -> Result<()> {
    ns.bridge(name, ports)
}

/// A veth pair: `a_if` in `a`, `b_if` in `b`, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name()])
        .map_err(|e| e.context(format!("veth {}:{a_if} <-> {}:{b_if}", a.name(), b.name())))?;
    a.link_up(a_if)?;
    b.link_up(b_if)
}

// ---------------------------------------------------------------------------
// Topologies

/// Addresses of the standard layouts (those of `../shared/lab`).
pub mod addr {
    /// Client (outside) address, in 192.0.2.0/24.
    pub const CLIENT: &str = "192.0.2.10";
    /// Gateway's outside address (the cluster VIP in cluster layouts).
    pub const GATEWAY_EXT: &str = "192.0.2.1";
    /// Gateway's inside address (server's default gateway).
    pub const GATEWAY_INT: &str = "198.51.100.1";
    pub const SERVER: &str = "198.51.100.10";
    pub const EXT_NET: &str = "192.0.2.0/24";
    pub const INT_NET: &str = "198.51.100.0/24";
    /// NAT layout: the client's private address and network.
    pub const NAT_CLIENT: &str = "10.0.0.10";
    pub const NAT_INSIDE: &str = "10.0.0.1";
    pub const NAT_NET: &str = "10.0.0.0/24";
    /// NAT layout: the NAT box's public address (what the gateway sees).
    pub const NAT_OUTSIDE: &str = "192.0.2.20";

    /// Cluster layouts: node `i` (1-based) on ext and int: .(1 + i).
    pub fn node_ext(i: usize) -> String {
        format!("192.0.2.{}", 1 + i)
    }

    pub fn node_int(i: usize) -> String {
        format!("198.51.100.{}", 1 + i)
    }
}

/// Options of [`Topology::build`].
#[derive(Clone, Debug, Default)]
pub struct TopologyOptions {
    /// Put a NAT namespace between client and gateway: client 10.0.0.10/24
    /// behind nat 10.0.0.1, which masquerades out of 192.0.2.20/24.
    pub nat: bool,
    /// Masquerade with random source ports (`--random-fully`).
    pub nat_random_ports: bool,
    /// Give the client a plain route to the server network via the gateway
    /// (baseline without IPsec). Off: only an IPsec peer's route gets there.
    pub client_route_to_server: bool,
}

/// Client, optional NAT, gateway and server namespaces joined by veth pairs:
///
/// ```text
/// client eth0 192.0.2.10/24 --- ext0 192.0.2.1/24  gateway  int0 198.51.100.1/24 --- eth0 198.51.100.10/24 server
/// with nat: client eth0 10.0.0.10/24 --- int0 10.0.0.1/24 nat ext0 192.0.2.20/24 --- ext0 gateway ...
/// ```
///
/// The gateway forwards (rp_filter off); the server's default route is the
/// gateway; the client has no route to 198.51.100.0/24 (an IPsec peer adds
/// one) unless `client_route_to_server`. Each namespace cleans up after
/// itself on drop.
pub struct Topology {
    pub prefix: String,
    pub client: Netns,
    pub nat: Option<Netns>,
    pub gateway: Netns,
    pub server: Netns,
}

impl Topology {
    /// client <-> gateway <-> server.
    pub fn client_gateway_server(test: &str) -> Result<Topology> {
        Topology::build(test, &TopologyOptions::default())
    }

    /// client <-> nat <-> gateway <-> server.
    pub fn client_nat_gateway_server(test: &str) -> Result<Topology> {
        Topology::build(test, &TopologyOptions { nat: true, ..TopologyOptions::default() })
    }

    pub fn build(test: &str, opts: &TopologyOptions) -> Result<Topology> {
        let prefix = unique_prefix(test);
        let client = Netns::new(&prefix, "client")?;
        let nat = if opts.nat { Some(Netns::new(&prefix, "nat")?) } else { None };
        let gateway = Netns::new(&prefix, "gateway")?;
        let server = Netns::new(&prefix, "server")?;

        veth(&gateway, "int0", &server, "eth0")?;
        gateway.addr_add("int0", &format!("{}/24", addr::GATEWAY_INT))?;
        server.addr_add("eth0", &format!("{}/24", addr::SERVER))?;
        server.default_route(addr::GATEWAY_INT)?;

        if let Some(nat) = &nat {
            veth(&client, "eth0", nat, "int0")?;
            veth(nat, "ext0", &gateway, "ext0")?;
            client.addr_add("eth0", &format!("{}/24", addr::NAT_CLIENT))?;
            client.default_route(addr::NAT_INSIDE)?;
            nat.addr_add("int0", &format!("{}/24", addr::NAT_INSIDE))?;
            nat.addr_add("ext0", &format!("{}/24", addr::NAT_OUTSIDE))?;
            nat.enable_forwarding()?;
            if opts.nat_random_ports {
                nat.masquerade_random_ports("ext0")?;
            } else {
                nat.masquerade("ext0")?;
            }
        } else {
            veth(&client, "eth0", &gateway, "ext0")?;
            client.addr_add("eth0", &format!("{}/24", addr::CLIENT))?;
        }
        gateway.addr_add("ext0", &format!("{}/24", addr::GATEWAY_EXT))?;
        gateway.enable_forwarding()?;
        if opts.client_route_to_server {
            if opts.nat {
                if let Some(n) = &nat {
                    n.route_add(addr::INT_NET, addr::GATEWAY_EXT)?;
                }
            } else {
                client.route_add(addr::INT_NET, addr::GATEWAY_EXT)?;
            }
        }
        Ok(Topology { prefix, client, nat, gateway, server })
    }

    /// The address the gateway sees the client's packets come from.
    pub fn client_public_addr(&self) -> &'static str {
        if self.nat.is_some() { addr::NAT_OUTSIDE } else { addr::CLIENT }
    }

    /// The client's own address.
    pub fn client_addr(&self) -> &'static str {
        if self.nat.is_some() { addr::NAT_CLIENT } else { addr::CLIENT }
    }

    /// All namespaces, for diagnostics.
    pub fn describe(&self) -> String {
        let mut s = self.client.describe();
        if let Some(n) = &self.nat {
            s.push_str(&n.describe());
        }
        s.push_str(&self.gateway.describe());
        s.push_str(&self.server.describe());
        s
    }
}

/// A cluster layout like `../shared/lab/topo.sh`: a switch namespace `sw`
/// with bridges `ext` (client, every node) and `int` (every node, server),
/// multicast snooping off. Node `i` (1-based) has ext0 192.0.2.(1+i)/24 and
/// int0 198.51.100.(1+i)/24, forwards, rp_filter off. The VIPs 192.0.2.1 and
/// 198.51.100.1 are not assigned ([`Cluster::vip_add`]); the server's default
/// route is 198.51.100.1.
pub struct Cluster {
    pub prefix: String,
    pub client: Netns,
    pub nodes: Vec<Netns>,
    pub server: Netns,
    pub switch: Netns,
}

impl Cluster {
    pub fn build(test: &str, nodes: usize) -> Result<Cluster> {
        let prefix = unique_prefix(test);
        let switch = Netns::new(&prefix, "sw")?;
        let client = Netns::new(&prefix, "client")?;
        let server = Netns::new(&prefix, "server")?;
        let mut gws = Vec::new();
        for i in 1..=nodes {
            gws.push(Netns::new(&prefix, &format!("gw{i}"))?);
        }
        switch.bridge("ext", &[])?;
        switch.bridge("int", &[])?;
        veth(&switch, "client-ext", &client, "eth0")?;
        switch.bridge_add_port("ext", "client-ext")?;
        veth(&switch, "server-int", &server, "eth0")?;
        switch.bridge_add_port("int", "server-int")?;
        for (i, gw) in gws.iter().enumerate() {
            let n = i + 1;
            veth(&switch, &format!("gw{n}-ext"), gw, "ext0")?;
            switch.bridge_add_port("ext", &format!("gw{n}-ext"))?;
            veth(&switch, &format!("gw{n}-int"), gw, "int0")?;
            switch.bridge_add_port("int", &format!("gw{n}-int"))?;
            gw.addr_add("ext0", &format!("{}/24", addr::node_ext(n)))?;
            gw.addr_add("int0", &format!("{}/24", addr::node_int(n)))?;
            gw.enable_forwarding()?;
        }
        client.addr_add("eth0", &format!("{}/24", addr::CLIENT))?;
        server.addr_add("eth0", &format!("{}/24", addr::SERVER))?;
        server.default_route(addr::GATEWAY_INT)?;
        Ok(Cluster { prefix, client, nodes: gws, server, switch })
    }

    /// Node `i` (1-based).
    pub fn node(&self, i: usize) -> &Netns {
        &self.nodes[i - 1]
    }

    /// One more host on the switch's bridge `bridge` (`"ext"` or `"int"`):
    /// a namespace `<prefix>-<role>` whose `eth0` has `cidr`, plugged in
    /// through `<role>-<bridge>` on the switch side (at most 15
    /// characters). Dropping the namespace unplugs it.
    pub fn attach(&self, bridge: &str, role: &str, cidr: &str) -> Result<Netns> {
        let port = format!("{role}-{bridge}");
        if port.len() > 15 {
            return Err(Error::new(format!("switch port name {port:?} is longer than 15 characters")));
        }
        let ns = Netns::new(&self.prefix, role)?;
        veth(&self.switch, &port, &ns, "eth0")?;
        self.switch.bridge_add_port(bridge, &port)?;
        ns.addr_add("eth0", cidr)?;
        Ok(ns)
    }

    /// Puts the VIPs on node `i` and flushes the neighbour caches of client
    /// and server so they re-resolve.
    pub fn vip_add(&self, i: usize) -> Result<()> {
        let gw = self.node(i);
        gw.addr_replace("ext0", &format!("{}/24", addr::GATEWAY_EXT))?;
        gw.addr_replace("int0", &format!("{}/24", addr::GATEWAY_INT))?;
        let _ = self.client.ip(&["neigh", "flush", "dev", "eth0"]);
        let _ = self.server.ip(&["neigh", "flush", "dev", "eth0"]);
        Ok(())
    }

    pub fn vip_del(&self, i: usize) -> Result<()> {
        let gw = self.node(i);
        let _ = gw.addr_del("ext0", &format!("{}/24", addr::GATEWAY_EXT));
        let _ = gw.addr_del("int0", &format!("{}/24", addr::GATEWAY_INT));
        Ok(())
    }
}
