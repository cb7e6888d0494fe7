//! Helpers shared by every integration test (the way mio's `tests/util`
//! is), so no test file keeps a private copy:
//!
//! - the timeouts ([`PATIENCE`], [`TICK`], [`BOUNDED_WAIT`] and
//!   [`BOUNDED_ITERATIONS`]) and the loops built from them ([`lp`],
//!   [`bounded`]);
//! - the backend lists: [`BACKENDS`] (the examples' flags) and
//!   [`LOOP_BACKENDS`] (the library's), and the macros that run one body on
//!   each backend (`every_backend!`) or on each backend × address family
//!   (`every_backend_and_family!`, with [`Env`]), in [`backends`];
//! - one recording handler, [`Recorder`] (in [`recorder`]), and its log;
//! - a per-thread capture of the `log` facade ([`logs`]);
//! - for the example tests: find the binary, start a server and read its
//!   `listening on` line, and make sure every process is killed when the
//!   test ends (pass or panic).
#![allow(dead_code)] // each test binary uses a different subset
#![allow(unused_imports)] // re-exports, used by some test binaries only

#[macro_use]
pub mod backends;
pub mod families;
pub mod logs;
pub mod recorder;

pub use families::{Env, Fam};
pub use recorder::{
    assert_no_errors, events, has, hook, keep_accepted, new_log, on_accepted, AcceptedHook,
    ErrorHook, Hook, Log, Recorder,
};

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Both loop backends, as the examples' flags: every test body runs once
/// with each.
pub const BACKENDS: [&str; 3] = ["--select", "--poll", "--epoll"];

/// How long a test waits for anything a process should do at once (start,
/// answer, exit), and for any condition a loop should reach: the deadline
/// of every "iterate until" in the tests. Generous: CI machines are slow
/// and noisy; a correct program takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The wait of one iteration of a loop that a test steps (`count(1)` at a
/// time, checking a condition in between): short, so a test never sleeps
/// long on an idle map, long enough not to spin.
pub const TICK: Duration = Duration::from_millis(10);

/// The wait of one iteration that a test expects to find something ready
/// (`count(1)` once, then a check): a bound, never reached by a correct run.
pub const ITERATION_PATIENCE: Duration = Duration::from_secs(5);

/// The wait of one iteration of a [`bounded`] loop.
pub const BOUNDED_WAIT: Duration = Duration::from_millis(100);

/// The iterations of a [`bounded`] loop: far more than any test needs.
pub const BOUNDED_ITERATIONS: u64 = 2000;

/// Every loop backend, for tests that loop over them in one body (a test
/// whose backends must not run in parallel, say because it works at fixed
/// fd numbers): the crate's own list, so a new backend is picked up here.
pub const LOOP_BACKENDS: [selectloop::Backend; 3] = selectloop::Backend::ALL;

/// A loop on `backend` that waits at most [`TICK`] per iteration (the
/// caller adds `.count(..)`).
pub fn lp(backend: selectloop::Backend) -> selectloop::Loop {
    selectloop::Loop::new().timeout(TICK).backend(backend)
}

/// A loop on `backend` bounded in iterations ([`BOUNDED_ITERATIONS`] of at
/// most [`BOUNDED_WAIT`]); it also ends as soon as the map is empty.
pub fn bounded(backend: selectloop::Backend) -> selectloop::Loop {
    selectloop::Loop::new()
        .backend(backend)
        .timeout(BOUNDED_WAIT)
        .count(BOUNDED_ITERATIONS)
}

/// Whether a file descriptor is open at number `fd` now (whatever it is).
pub fn fd_is_open(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: only used for F_GETFD, which reads the flags of whatever is (or
    // is not) open at this number and touches nothing else.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFD).is_ok()
}

/// A path in the temporary directory no other test (of any binary running
/// now) uses: `selectloop-test-<pid>-<tag>-<n>`. Nothing is created.
pub fn temp_path(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("selectloop-test-{}-{tag}-{n}", std::process::id()))
}

/// The path of example `name`, built by `cargo test` next to the test
/// binaries (`target/<profile>/examples/<name>`).
pub fn example_path(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "example binary {} not found: build it first (`cargo build --example {name}`), or run the whole suite with `cargo test`, which builds every example",
        path.display()
    );
    path
}

/// A child process that is killed (and reaped) when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    /// Starts example `name` with `args`; stdin is null, stdout and stderr
    /// are piped.
    pub fn spawn(name: &str, args: &[&str]) -> Proc {
        Proc::spawn_with(name, args, Stdio::null(), Stdio::piped())
    }

    /// Starts example `name` with `args`, the given stdin and stdout, and
    /// stderr piped.
    pub fn spawn_with(
        name: &str,
        args: &[&str],
        stdin: impl Into<Stdio>,
        stdout: impl Into<Stdio>,
    ) -> Proc {
        let child = Command::new(example_path(name))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
        Proc {
            child,
            name: name.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY-free: nix's kill is safe.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::Signal::try_from(signal).expect("valid signal"),
        );
    }

    /// Waits for the process to exit, at most `limit`; `None` if it did not.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Takes stderr and collects it on a thread; the receiver yields the
    /// whole text when the process closes it.
    pub fn collect_stderr(&mut self) -> mpsc::Receiver<String> {
        collect(self.child.stderr.take().expect("stderr piped"))
    }

    /// Takes stdout and collects it on a thread.
    pub fn collect_stdout(&mut self) -> mpsc::Receiver<String> {
        collect(self.child.stdout.take().expect("stdout piped"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = r.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// A running server example and the address from its `listening on` line.
pub struct Server {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// The rest of stdout, line by line (after `listening on`).
    pub stdout: mpsc::Receiver<String>,
}

impl Server {
    /// Starts example `name` with `args` and waits (at most [`PATIENCE`])
    /// for its `listening on IP:PORT` line. Pass `--bind 127.0.0.1:0` (or
    /// the example's equivalent) so parallel tests never collide.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Server::from_proc(Proc::spawn(name, args))
    }

    /// The next stdout line, waiting at most [`PATIENCE`].
    pub fn next_line(&self) -> String {
        self.stdout
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{}: no stdout line in time", self.proc.name))
    }
}

/// Kills the process and returns what it wrote to stderr (for messages).
fn stderr_now(proc: &mut Proc) -> String {
    let _ = proc.child.kill();
    let mut s = String::new();
    if let Some(mut e) = proc.child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// Runs example `name` to completion with `stdin` as input, at most
/// [`PATIENCE`]; returns (status, stdout, stderr). Panics if it hangs.
pub fn run(name: &str, args: &[&str], stdin: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut child = Command::new(example_path(name))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let mut input = child.stdin.take().expect("stdin piped");
    let data = stdin.to_vec();
    let writer = thread::spawn(move || {
        use std::io::Write;
        let _ = input.write_all(&data);
    });
    let out: mpsc::Receiver<Vec<u8>> = {
        let (tx, rx) = mpsc::channel();
        let mut o = child.stdout.take().expect("stdout piped");
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = o.read_to_end(&mut v);
            let _ = tx.send(v);
        });
        rx
    };
    let err_pipe: ChildStderr = child.stderr.take().expect("stderr piped");
    let err = collect(err_pipe);
    let mut proc = Proc {
        child,
        name: name.to_string(),
    };
    let status = proc
        .wait_timeout(PATIENCE)
        .unwrap_or_else(|| panic!("{name} {args:?} did not exit within {PATIENCE:?}"));
    let _ = writer.join();
    let stdout = out.recv_timeout(PATIENCE).unwrap_or_default();
    let stderr = err.recv_timeout(PATIENCE).unwrap_or_default();
    (status, stdout, stderr)
}

/// Asserts the bad-arguments contract: exit status 2, a one-line error
/// naming the problem first on stderr, the usage, no panic.
pub fn assert_bad_args(name: &str, args: &[&str], mentions: &str) {
    let (status, _out, err) = run(name, args, b"");
    assert_eq!(status.code(), Some(2), "{name} {args:?}: stderr:\n{err}");
    assert!(
        !err.contains("panicked"),
        "{name} {args:?} panicked:\n{err}"
    );
    assert!(
        err.contains(&format!("Usage: {name}")),
        "{name} {args:?}: no usage on stderr:\n{err}"
    );
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.contains(mentions),
        "{name} {args:?}: first stderr line {first:?} does not mention {mentions:?}"
    );
}

// ---- Helpers for the example tests of the network examples (appended) ----

/// `n` pseudo-random bytes from `seed` (xorshift64*): incompressible test
/// data that is the same on every run.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Connects to `addr` with read and write timeouts of [`PATIENCE`].
pub fn connect(addr: SocketAddr) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect_timeout(&addr, PATIENCE)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    s.set_write_timeout(Some(PATIENCE)).expect("write timeout");
    s
}

/// A TCP connection to `addr` (IPv4) whose receive buffer is small, so the
/// kernel absorbs little of what the server sends to it: what the server
/// cannot send waits in the server's own queues. Read and write timeouts
/// of [`PATIENCE`].
pub fn small_window_connection(addr: SocketAddr) -> std::net::TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    // A small segment size keeps the server's send buffer from growing to
    // megabytes (the kernel sizes it from the loopback's 64 KiB segments).
    sock.set_mss(536).expect("TCP_MAXSEG");
    sock.connect_timeout(&addr.into(), PATIENCE)
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    let s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    s.set_write_timeout(Some(PATIENCE)).expect("write timeout");
    s
}

/// Sends `unit` over and over and reads nothing back, until the peer has
/// taken nothing for half a second (its output to us is queued full and it
/// stopped reading: backpressure all the way). Returns the bytes sent.
pub fn flood_without_reading(stream: &std::net::TcpStream, unit: &[u8]) -> usize {
    use std::io::Write;
    stream.set_nonblocking(true).expect("non-blocking");
    let (mut sent, mut stalled) = (0, Instant::now());
    while stalled.elapsed() < Duration::from_millis(500) {
        match (&*stream).write(unit) {
            Ok(n) => {
                sent += n;
                stalled = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("flooding: {e}"),
        }
    }
    stream.set_nonblocking(false).expect("blocking");
    sent
}

/// Floods `stream` without reading ([`flood_without_reading`]), then
/// asserts that server `pid`, run with `--idle-timeout 1`, closes the
/// connection within [`PATIENCE`] but not before its second idle period:
/// the first timeout says goodbye, the second closes a client that does
/// not read it.
pub fn assert_a_non_reader_is_closed_after_two_idle_periods(
    pid: i32,
    stream: &std::net::TcpStream,
    unit: &[u8],
    backend: &str,
) {
    flood_without_reading(stream, unit);
    // Counted now, not at start: the loop may make an fd of its own
    // (epoll's) after it says `listening`.
    let with_client = open_fds(pid);
    // The server stopped reading at least half a second ago; its first
    // idle timeout is 1 s after its last read, the close one second later.
    let took = wait_for_open_fds(pid, with_client - 1, PATIENCE)
        .unwrap_or_else(|| panic!("{backend}: the connection is still open"));
    assert!(
        took >= Duration::from_millis(900),
        "{backend}: closed {took:?} after the flood: before the second idle period"
    );
}

/// How many fds process `pid` has open (`/proc/PID/fd`).
pub fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
}

/// Waits, at most `limit`, until process `pid` has at most `fds` fds
/// open; returns how long that took (`None`: it did not happen).
pub fn wait_for_open_fds(pid: i32, fds: usize, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if open_fds(pid) <= fds {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Closes `stream` with a reset (RST, `SO_LINGER` 0) instead of a FIN.
pub fn reset(stream: std::net::TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER");
    drop(stream);
}

/// Writes `data` on a thread while reading `expect` bytes back on this one;
/// returns what was read (shorter if the peer closed first).
pub fn send_and_receive(stream: &std::net::TcpStream, data: Vec<u8>, expect: usize) -> Vec<u8> {
    use std::io::Write;
    let mut writer = stream.try_clone().expect("clone stream");
    let t = thread::spawn(move || writer.write_all(&data));
    let mut got = Vec::with_capacity(expect);
    let mut reader = stream;
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < expect {
        let want = buf.len().min(expect - got.len());
        match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed after {} of {expect} bytes: {e}", got.len()),
        }
    }
    t.join().expect("writer thread").expect("write_all");
    got
}

/// Sends `signal` and asserts the process ends (generous slack: within
/// [`PATIENCE`]; the contract's "within 1 s" is not timed here) with status
/// 0, 130 or 143, without a panic.
pub fn assert_ends_on_signal(proc: &mut Proc, signal: i32) {
    let err = proc.collect_stderr();
    proc.signal(signal);
    let status = proc
        .wait_timeout(PATIENCE)
        .unwrap_or_else(|| panic!("{} did not exit after signal {signal}", proc.name));
    let err = err.recv_timeout(PATIENCE).unwrap_or_default();
    assert!(
        matches!(status.code(), Some(0) | Some(130) | Some(143)),
        "{} after signal {signal}: {status}; stderr:\n{err}",
        proc.name
    );
    assert!(!err.contains("panicked"), "{} panicked:\n{err}", proc.name);
}

/// Asserts the runtime-failure contract: a non-zero exit status (not 2,
/// which means bad arguments), one line on stderr that mentions `mentions`,
/// no panic.
pub fn assert_runtime_failure(name: &str, args: &[&str], mentions: &str) {
    let (status, _out, err) = run(name, args, b"");
    assert!(
        !status.success() && status.code().is_some(),
        "{name} {args:?}: {status}; stderr:\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "{name} {args:?} panicked:\n{err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{name} {args:?}: stderr:\n{err}"
    );
    assert!(
        err.contains(mentions),
        "{name} {args:?}: stderr {err:?} lacks {mentions:?}"
    );
}

/// A listener holding a free 127.0.0.1 port (so a server started on it
/// finds the address in use).
pub fn busy_port() -> (std::net::TcpListener, SocketAddr) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local_addr");
    (l, addr)
}

/// The resident set size of process `pid` in KiB (`VmRSS` of
/// `/proc/PID/status`).
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

impl Server {
    /// Starts example `name` with `args` under an open-file limit of
    /// `limit` (`ulimit -n` in a shell that then execs it; stderr is
    /// dropped) and waits for its `listening on` line.
    pub fn start_with_fd_limit(name: &str, limit: u32, args: &[&str]) -> Server {
        let script = format!("ulimit -n {limit} || exit 97; exec \"$@\"");
        let child = Command::new("bash")
            .args(["-c", &script, "low-fds"])
            .arg(example_path(name))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash");
        Server::from_proc(Proc {
            child,
            name: name.to_string(),
        })
    }

    /// A server started by the caller (e.g. through a shell that sets limits
    /// first, or by [`Server::start`]): waits (at most [`PATIENCE`]) for its
    /// `listening on IP:PORT` line.
    pub fn from_proc(mut proc: Proc) -> Server {
        let stdout: ChildStdout = proc.child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = match rx.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(_) => {
                let err = stderr_now(&mut proc);
                panic!(
                    "{} printed no `listening on` line; stderr:\n{err}",
                    proc.name
                );
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{}: first stdout line is {first:?}", proc.name))
            .parse()
            .unwrap_or_else(|e| panic!("{}: bad address in {first:?}: {e}", proc.name));
        Server {
            proc,
            addr,
            stdout: rx,
        }
    }
}

// ---- Helpers for in-process tests of the library (appended) ----

/// The loop backends, for tests that run the library in this process: each
/// body runs once with each (name, loop): every backend the platform has.
pub fn loop_backends() -> Vec<(&'static str, selectloop::Loop)> {
    selectloop::Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .map(|b| (b.name(), selectloop::Loop::new().backend(b)))
        .collect()
}

/// Ends the whole test process (exit status 101, a message on stderr) if
/// it is not dropped within [`PATIENCE`]: a loop blocked in
/// `timeout(None)` that nothing wakes makes the test fail instead of hang.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
}

impl Watchdog {
    pub fn new(what: &str) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_string();
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(PATIENCE) {
                eprintln!("watchdog: {what} still blocked after {PATIENCE:?}");
                std::process::exit(101);
            }
        });
        Watchdog { done: Some(tx) }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
    }
}

/// The signals this process catches and ignores (`SigCgt`, `SigIgn` of
/// `/proc/self/status`), as bit masks (bit `n - 1` for signal `n`).
pub fn signal_masks() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .expect("signal mask line")
    };
    (mask("SigCgt:"), mask("SigIgn:"))
}

/// Whether process `pid` is gone or a zombie: `None` if it is gone,
/// `Some(state)` with its state letter (`Z` for a zombie) otherwise.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
}

// ---- Helpers for the exercise checkers (tests/exercises.rs) ----

/// The binary an exercise checker runs: the student's, if the environment
/// variable `env` names one, else the reference solution `example`.
pub fn exercise_binary(example: &str, env: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.exists(),
                "{env}={} does not exist: build your solution first",
                path.display()
            );
            path
        }
        _ => example_path(example),
    }
}

impl Server {
    /// Starts the binary at `path` (an example, or a student's solution)
    /// with `args`, and waits for its `listening on` line.
    pub fn start_binary(path: &std::path::Path, args: &[&str]) -> Server {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let child = Command::new(path)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        Server::from_proc(Proc { child, name })
    }
}

/// A line-oriented client: reads `\n`-terminated lines (without the line
/// end), each within [`PATIENCE`].
pub struct LineClient {
    pub stream: std::net::TcpStream,
    reader: BufReader<std::net::TcpStream>,
}

impl LineClient {
    pub fn connect(addr: SocketAddr) -> LineClient {
        let stream = connect(addr);
        let reader = BufReader::new(stream.try_clone().expect("clone stream"));
        LineClient { stream, reader }
    }

    /// Asserts that the next line is `want` (`what` says whose check it
    /// is); the failure names the line expected, also on a timeout or an
    /// end of stream.
    pub fn expect_line(&mut self, want: &str, what: &str) {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("{what}: expected {want:?}, but the server closed the connection"),
            Ok(_) => {}
            Err(e) => {
                panic!("{what}: expected {want:?}, but no line came within {PATIENCE:?}: {e}")
            }
        }
        assert_eq!(line.trim_end_matches(['\r', '\n']), want, "{what}");
    }

    /// The next line, without `\r\n`; panics on end of stream or timeout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(_) => line.trim_end_matches(['\r', '\n']).to_string(),
            Err(e) => panic!("no line within {PATIENCE:?}: {e}"),
        }
    }

    /// Sends `bytes` as they are (no newline); an error (the server closed
    /// the connection meanwhile) is returned, not a panic.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        self.stream.write_all(bytes)
    }

    /// Sends `text` and a `\n`.
    pub fn send_line(&mut self, text: &str) {
        use std::io::Write;
        self.stream
            .write_all(format!("{text}\n").as_bytes())
            .expect("send line");
    }

    /// Asserts nothing arrives within `quiet`.
    pub fn assert_silent(&mut self, quiet: Duration) {
        self.stream.set_read_timeout(Some(quiet)).expect("timeout");
        let mut line = String::new();
        let got = self.reader.read_line(&mut line);
        self.stream
            .set_read_timeout(Some(PATIENCE))
            .expect("timeout");
        match got {
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected silence, got {other:?}: {line:?}"),
        }
    }
}

// ---- Helpers for daemons' logs (tests/example_kv_daemon.rs) ----

/// A process's stderr read line by line on a thread, for tests that wait
/// for a log line while the process keeps running.
pub struct LogLines {
    rx: mpsc::Receiver<String>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
}

impl Proc {
    /// Takes stderr and delivers it line by line ([`LogLines`]).
    pub fn log_lines(&mut self) -> LogLines {
        let stderr = self.child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LogLines {
            rx,
            seen: Vec::new(),
        }
    }
}

impl LogLines {
    /// Waits at most `limit` for a line containing `needle` (lines before
    /// it are kept in [`seen`](Self::seen)); `None` if none came.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Everything seen so far plus what has arrived, as one text (for
    /// failure messages).
    pub fn text(&mut self) -> String {
        while let Ok(line) = self.rx.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// The pids of the live processes and zombies whose parent is `pid`
/// (from `/proc/*/stat`), each with its state letter (`Z`: a zombie).
pub fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": the fields after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next());
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if let (Some(state), Some(ppid)) = (state, ppid) {
            if ppid == pid {
                out.push((child, state));
            }
        }
    }
    out
}

// ---- Helpers for the library tests that drive a `Map` in-process ----

/// Runs `event_loop` (its timeout replaced by `tick`) one iteration at a
/// time for `span` of wall-clock time; returns how many iterations ran. An
/// idle map runs about `span / tick` of them; a channel that makes the
/// loop spin runs thousands.
pub fn iterations_during(
    event_loop: &selectloop::Loop,
    map: &mut selectloop::Map,
    tick: Duration,
    span: Duration,
) -> u64 {
    let mut one = event_loop.clone().timeout(tick);
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < span {
        if one.iterate(map).is_err() {
            break;
        }
        n += 1;
    }
    n
}

/// A connected TCP pair on the loopback: (the accepted side, the client).
pub fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let client = connect(l.local_addr().expect("local_addr"));
    let (server, _) = l.accept().expect("accept");
    (server, client)
}

/// The peak resident set size of process `pid` in KiB (`VmHWM` of
/// `/proc/PID/status`).
pub fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}
