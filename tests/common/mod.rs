//! Helpers shared by the integration tests that run the example binaries as
//! processes: find the binary, start a server and read its `listening on`
//! line, and make sure every process is killed when the test ends (pass or
//! panic).
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Both loop backends, as the examples' flags: every test body runs once
/// with each.
pub const BACKENDS: [&str; 2] = ["--select", "--poll"];

/// How long a test waits for anything a process should do at once (start,
/// answer, exit). Generous: CI machines are slow and noisy; a correct
/// program takes milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

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
        "example binary {} not found: run the tests with `cargo test`, which builds the examples",
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
        let child = Command::new(example_path(name))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
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
        let mut proc = Proc::spawn(name, args);
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
                panic!("{name} {args:?} printed no `listening on` line; stderr:\n{err}");
            }
        };
        let addr = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name}: first stdout line is {first:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{name}: bad address in {first:?}: {e}"));
        Server {
            proc,
            addr,
            stdout: rx,
        }
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
/// naming the problem first on stderr, no panic.
pub fn assert_bad_args(name: &str, args: &[&str], mentions: &str) {
    let (status, _out, err) = run(name, args, b"");
    assert_eq!(status.code(), Some(2), "{name} {args:?}: stderr:\n{err}");
    assert!(!err.contains("panicked"), "{name} {args:?} panicked:\n{err}");
    let first = err.lines().next().unwrap_or("");
    assert!(
        first.contains(mentions),
        "{name} {args:?}: first stderr line {first:?} does not mention {mentions:?}"
    );
}
