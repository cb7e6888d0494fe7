//! The file_cat example as a process, on both backends: byte-exact through
//! pipes and regular files, copying as bytes arrive, exit status, the
//! blocking mode of its stdin restored.

mod common;

use common::*;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;

const NAME: &str = "file_cat";

/// A file in the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("selectloop-file_cat-{tag}-{}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn copies_five_mib_through_pipes_byte_exact() {
    let data = random_bytes(5 << 20, 21);
    for backend in BACKENDS {
        let (status, out, err) = run(NAME, &[backend], &data);
        assert!(status.success(), "{backend}: {status}; stderr:\n{err}");
        assert_eq!(out.len(), data.len(), "{backend}");
        assert!(out == data, "{backend}: output differs");
    }
}

#[test]
fn copies_a_regular_file_stdin_and_to_a_regular_file_stdout() {
    let data = random_bytes(5 << 20, 22);
    for backend in BACKENDS {
        // stdin a regular file, stdout a pipe
        let input = TempFile::new(&format!("in{backend}"), &data);
        let mut proc = Proc::spawn_with(
            NAME,
            &[backend],
            File::open(&input.0).unwrap(),
            Stdio::piped(),
        );
        let mut stdout = proc.child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            let mut v = Vec::new();
            stdout.read_to_end(&mut v).map(|_| v)
        });
        let status = proc.wait_timeout(PATIENCE).expect("file_cat hung");
        assert!(status.success(), "{backend}: {status}");
        assert!(
            reader.join().unwrap().unwrap() == data,
            "{backend}: file -> pipe differs"
        );

        // stdin a pipe, stdout a regular file
        let output = TempFile::new(&format!("out{backend}"), b"");
        let mut proc = Proc::spawn_with(
            NAME,
            &[backend],
            Stdio::piped(),
            File::create(&output.0).unwrap(),
        );
        let mut stdin = proc.child.stdin.take().unwrap();
        let input = data.clone();
        let writer = thread::spawn(move || stdin.write_all(&input));
        let status = proc.wait_timeout(PATIENCE).expect("file_cat hung");
        writer.join().unwrap().unwrap();
        assert!(status.success(), "{backend}: {status}");
        assert!(
            std::fs::read(&output.0).unwrap() == data,
            "{backend}: pipe -> file differs"
        );
    }
}

/// Each chunk comes out before stdin is closed: copied as it arrives.
#[test]
fn copies_bytes_as_they_arrive() {
    for backend in BACKENDS {
        let mut proc = Proc::spawn_with(NAME, &[backend], Stdio::piped(), Stdio::piped());
        let mut stdin = proc.child.stdin.take().unwrap();
        let mut stdout = proc.child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        for chunk in [&b"first chunk\n"[..], b"\x00second\xff", b"third"] {
            stdin.write_all(chunk).unwrap();
            stdin.flush().unwrap();
            let mut got = Vec::new();
            while got.len() < chunk.len() {
                let part = rx
                    .recv_timeout(PATIENCE)
                    .unwrap_or_else(|_| panic!("{backend}: {chunk:?} not copied before EOF"));
                got.extend(part);
            }
            assert_eq!(got, chunk, "{backend}");
        }
        drop(stdin);
        let status = proc.wait_timeout(PATIENCE).expect("file_cat hung at EOF");
        assert!(status.success(), "{backend}: {status}");
    }
}

#[test]
fn empty_input_gives_empty_output_and_exit_0() {
    for backend in BACKENDS {
        let (status, out, err) = run(NAME, &[backend], b"");
        assert!(status.success(), "{backend}: {status}; stderr:\n{err}");
        assert!(out.is_empty(), "{backend}");
    }
}

/// file_dispatcher makes the fd non-blocking, and the mode belongs to the
/// open file description shared with whoever else holds it: file_cat puts
/// it back at exit.
#[test]
fn restores_the_blocking_mode_of_its_stdin() {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    for backend in BACKENDS {
        // Close-on-exec, or the child would inherit the write end and never
        // see end of input.
        let (read_end, write_end): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        // A duplicate for the child: the test keeps `read_end`.
        let mut proc = Proc::spawn_with(
            NAME,
            &[backend],
            read_end.try_clone().unwrap(),
            Stdio::piped(),
        );
        let mut stdout = proc.child.stdout.take().unwrap();
        let mut w = File::from(write_end);
        w.write_all(b"some bytes").unwrap();
        drop(w);
        // Bounded: wait for the exit first (the output fits the pipe).
        let status = proc.wait_timeout(PATIENCE).expect("file_cat hung");
        assert!(status.success(), "{backend}: {status}");
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"some bytes");
        let flags = OFlag::from_bits_truncate(fcntl(&read_end, FcntlArg::F_GETFL).unwrap());
        assert!(
            !flags.contains(OFlag::O_NONBLOCK),
            "{backend}: stdin left non-blocking"
        );
    }
}

/// SIGINT and SIGTERM while the copy runs: file_cat puts the blocking
/// mode of its stdin and stdout back (the fds are shared with the test,
/// which reads their flags afterwards) and exits 130 / 143.
#[test]
fn restores_the_blocking_mode_of_stdin_and_stdout_after_a_signal() {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::time::{Duration, Instant};
    let nonblocking = |fd: &OwnedFd| {
        OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap()).contains(OFlag::O_NONBLOCK)
    };
    for backend in BACKENDS {
        for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
            let (in_read, in_write): (OwnedFd, OwnedFd) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
            let (out_read, out_write): (OwnedFd, OwnedFd) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
            let mut proc = Proc::spawn_with(
                NAME,
                &[backend],
                in_read.try_clone().unwrap(),
                out_write.try_clone().unwrap(),
            );
            let err = proc.collect_stderr();
            let mut w = File::from(in_write);
            w.write_all(b"copied before the signal").unwrap();
            // Copying: the bytes come out, and both fds are non-blocking.
            let mut r = File::from(out_read);
            let mut got = [0u8; 24];
            r.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"copied before the signal");
            let start = Instant::now();
            while !(nonblocking(&in_read) && nonblocking(&out_write)) {
                assert!(
                    start.elapsed() < PATIENCE,
                    "{backend}: fds never non-blocking"
                );
                thread::sleep(Duration::from_millis(5));
            }
            proc.signal(signal);
            let status = proc
                .wait_timeout(PATIENCE)
                .expect("file_cat ignored the signal");
            let err = err.recv_timeout(PATIENCE).unwrap_or_default();
            assert_eq!(
                status.code(),
                Some(code),
                "{backend} signal {signal}: {status}; {err}"
            );
            assert!(!err.contains("panicked"), "{backend}: {err}");
            assert!(
                !nonblocking(&in_read),
                "{backend} signal {signal}: stdin left non-blocking"
            );
            assert!(
                !nonblocking(&out_write),
                "{backend} signal {signal}: stdout left non-blocking"
            );
        }
    }
}

/// Its reader goes away: file_cat says so on one line and exits non-zero,
/// without a panic.
#[test]
fn a_closed_stdout_is_a_one_line_error() {
    for backend in BACKENDS {
        let mut proc = Proc::spawn_with(NAME, &[backend], Stdio::piped(), Stdio::piped());
        let mut stdin = proc.child.stdin.take().unwrap();
        drop(proc.child.stdout.take()); // nobody reads stdout
        let err = proc.collect_stderr();
        // On a thread, so a file_cat that stopped reading cannot block the
        // test; it fails (EPIPE) once file_cat has exited or been killed.
        thread::spawn(move || stdin.write_all(&random_bytes(1 << 20, 23)));
        let status = proc.wait_timeout(PATIENCE).expect("file_cat hung");
        let err = err.recv_timeout(PATIENCE).unwrap();
        assert!(
            !status.success() && status.code().is_some(),
            "{backend}: {status}"
        );
        assert!(!err.contains("panicked"), "{backend}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{backend}: {err}");
        assert!(err.contains("stdout"), "{backend}: {err}");
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    assert_bad_args(NAME, &["--frobnicate"], "--frobnicate");
    assert_bad_args(NAME, &["extra"], "extra");
    assert_bad_args(NAME, &["--poll", "--select"], "--select");
}
