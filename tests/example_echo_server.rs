//! The echo_server example as a process, on both backends: EXAMPLES.md's
//! contract clause by clause.

mod common;

use common::*;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

const NAME: &str = "echo_server";

fn start(backend: &str) -> Server {
    Server::start(NAME, &["--bind", "127.0.0.1:0", backend])
}

#[test]
fn echoes_one_mib_byte_exact_and_logs_the_connection() {
    for backend in BACKENDS {
        let mut server = start(backend);
        let data = random_bytes(1 << 20, 1);
        let client = connect(server.addr);
        let local = client.local_addr().unwrap();
        let got = send_and_receive(&client, data.clone(), data.len());
        assert!(
            got == data,
            "{backend}: echo differs ({} bytes back)",
            got.len()
        );
        drop(client);

        let err = server.proc.collect_stderr();
        server.proc.signal(libc::SIGTERM);
        assert!(server.proc.wait_timeout(PATIENCE).is_some());
        let err = err.recv_timeout(PATIENCE).unwrap();
        assert!(
            err.contains(&format!("Incoming connection from {local}")),
            "{backend}: stderr lacks the connection log:\n{err}"
        );
    }
}

#[test]
fn serves_fifty_concurrent_clients() {
    for backend in BACKENDS {
        let server = start(backend);
        // All connected first, then all talking at once.
        let clients: Vec<_> = (0..50).map(|_| connect(server.addr)).collect();
        let threads: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                thread::spawn(move || {
                    let data = random_bytes(64 * 1024, 100 + i as u64);
                    let got = send_and_receive(&c, data.clone(), data.len());
                    got == data
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert!(t.join().unwrap(), "{backend}: client {i} got a wrong echo");
        }
    }
}

#[test]
fn a_client_that_resets_does_not_stop_the_server() {
    for backend in BACKENDS {
        let mut server = start(backend);
        let mut rude = connect(server.addr);
        rude.write_all(&random_bytes(200_000, 7)).unwrap();
        reset(rude);
        // A client that resets before its echo could even be sent.
        let rude2 = connect(server.addr);
        reset(rude2);

        let polite = connect(server.addr);
        let data = random_bytes(100_000, 8);
        assert!(send_and_receive(&polite, data.clone(), data.len()) == data);
        assert!(
            server.proc.child.try_wait().unwrap().is_none(),
            "{backend}: the server died"
        );
    }
}

/// A client sends without ever reading: the server must stop reading it
/// (backpressure) rather than queue its echo without bound, and must go on
/// serving another client meanwhile.
#[test]
fn a_client_that_never_reads_cannot_grow_memory_or_stall_others() {
    const PUSH: usize = 200 << 20;
    for backend in BACKENDS {
        let server = start(backend);
        let pid = server.proc.pid();
        let before = rss_kib(pid);

        let hog = connect(server.addr);
        hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let chunk = random_bytes(1 << 20, 9);
        let mut pushed = 0usize;
        let deadline = Instant::now() + PATIENCE;
        while pushed < PUSH && Instant::now() < deadline {
            match (&hog).write(&chunk) {
                Ok(n) => pushed += n,
                // Blocked for 2 s: the server stopped reading us. Good.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(e) => panic!("{backend}: write failed after {pushed} bytes: {e}"),
            }
        }

        // Another client is served while the hog is stuck.
        let other = connect(server.addr);
        let data = random_bytes(1 << 20, 10);
        assert!(
            send_and_receive(&other, data.clone(), data.len()) == data,
            "{backend}: the other client was not served"
        );

        let after = rss_kib(pid);
        assert!(
            after < before + 64 * 1024,
            "{backend}: RSS grew from {before} KiB to {after} KiB after {pushed} bytes pushed"
        );
        drop(hog);
        drop(server);
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    assert_bad_args(NAME, &["--bind", "nonsense"], "--bind");
    assert_bad_args(NAME, &["--frobnicate"], "--frobnicate");
    assert_bad_args(NAME, &["--poll", "--select"], "--select");
}

#[test]
fn address_in_use_is_a_one_line_error() {
    for backend in BACKENDS {
        let (_held, addr) = busy_port();
        assert_runtime_failure(NAME, &["--bind", &addr.to_string(), backend], "in use");
    }
}

#[test]
fn sigterm_and_sigint_end_the_server() {
    for backend in BACKENDS {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let mut server = start(backend);
            let _client = connect(server.addr);
            assert_ends_on_signal(&mut server.proc, signal);
        }
    }
}

/// Issue 13: a client that sends 6 MiB, reads slowly and shuts down its
/// write side gets every byte back. asyncore (and this server before) closed
/// at the read of 0 bytes and dropped the echo still queued.
#[test]
fn a_half_closed_client_gets_its_whole_echo() {
    use std::io::Read;
    const SIZE: usize = 6 << 20;
    for backend in BACKENDS {
        let server = start(backend);
        let client = connect(server.addr);
        let data = random_bytes(SIZE, 7);
        let mut writer = client.try_clone().unwrap();
        let sent = data.clone();
        let t = thread::spawn(move || {
            writer.write_all(&sent).unwrap();
            writer.shutdown(std::net::Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(SIZE);
        let mut buf = vec![0u8; 32 * 1024];
        let mut reads = 0u32;
        loop {
            match (&client).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("{backend}: after {} bytes: {e}", got.len()),
            }
            reads += 1;
            if reads % 16 == 0 {
                thread::sleep(Duration::from_millis(1)); // a slow reader
            }
        }
        t.join().unwrap();
        assert_eq!(got.len(), SIZE, "{backend}: bytes echoed back");
        assert!(got == data, "{backend}: the echo differs");
    }
}

/// `--idle-timeout`: a client that sends nothing is closed after the
/// timeout; one that keeps talking is not (each input pushes the deadline
/// back). Issue: servers held silent connections forever.
#[test]
fn an_idle_client_is_closed_and_a_talking_one_is_not() {
    use std::io::Read;
    for backend in BACKENDS {
        let server = Server::start(
            NAME,
            &["--bind", "127.0.0.1:0", "--idle-timeout", "1", backend],
        );
        let mut silent = connect(server.addr);
        let talking = connect(server.addr);
        let start = Instant::now();
        // The talking client sends every 300 ms for 2 s, reading its echo.
        for _ in 0..7 {
            let echo = send_and_receive(&talking, b"hi".to_vec(), 2);
            assert_eq!(echo, b"hi", "{backend}");
            thread::sleep(Duration::from_millis(300));
        }
        // By now the silent one was closed: EOF, not a reset.
        silent
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        let mut rest = Vec::new();
        silent.read_to_end(&mut rest).expect("a clean close");
        assert!(rest.is_empty(), "{backend}");
        assert!(
            start.elapsed() >= Duration::from_millis(900),
            "{backend}: closed early"
        );
        // The talking one still echoes.
        let echo = send_and_receive(&talking, b"still here".to_vec(), 10);
        assert_eq!(echo, b"still here", "{backend}");
    }
}

/// A client that stops reading its echo (and keeps sending until the
/// server stops reading too) does not hold its connection, and the echo
/// queued for it, past the idle timeout: the first timeout starts
/// delivering what is queued, the second closes. Issue: `close_when_done`
/// waited for good on a peer that never reads.
#[test]
fn a_client_that_never_reads_its_echo_is_closed_after_two_idle_periods() {
    for backend in BACKENDS {
        let server = Server::start(
            NAME,
            &["--bind", "127.0.0.1:0", "--idle-timeout", "1", backend],
        );
        let client = connect(server.addr);
        assert_a_non_reader_is_closed_after_two_idle_periods(
            server.proc.pid(),
            &client,
            &[b'x'; 64 * 1024],
            backend,
        );
    }
}
