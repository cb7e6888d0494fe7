//! The http_client example as a process, on both backends, against an HTTP
//! server the test runs itself (std::net, a thread per connection).

mod common;
/// The example's URL parser, compiled here too so that its unit tests run
/// with `cargo test` (an example's own tests do not).
#[path = "../examples/http_client/url.rs"]
#[allow(dead_code)]
mod url;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

const NAME: &str = "http_client";

/// The response the test server gives for `path`: binary, and 1 MiB for
/// `/big`; `/empty` gets no reply at all (the connection is just closed).
fn response_for(path: &str) -> Vec<u8> {
    let body = match path {
        "/big" => random_bytes(1 << 20, 11),
        other => {
            let mut b = format!("you asked for {other}\n").into_bytes();
            b.extend_from_slice(&[0, 255, 13, 10, 128]);
            b
        }
    };
    let mut r = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(&body);
    r
}

/// Requests seen, and a gate: no connection is answered before `expect`
/// requests have arrived, so a client that fetched one URL after the other
/// would never finish. (A gate that is not reached in [`PATIENCE`] opens
/// anyway and the request is answered `503`, failing the test.)
struct HttpServer {
    addr: SocketAddr,
    requests: Arc<(Mutex<Vec<Vec<u8>>>, Condvar)>,
}

impl HttpServer {
    fn start(expect: usize) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let shared = Arc::clone(&requests);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let shared = Arc::clone(&shared);
                thread::spawn(move || serve(conn, &shared, expect));
            }
        });
        HttpServer { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Vec<u8>> {
        self.requests.0.lock().unwrap().clone()
    }
}

fn serve(mut conn: TcpStream, shared: &(Mutex<Vec<Vec<u8>>>, Condvar), expect: usize) {
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.set_write_timeout(Some(PATIENCE)).unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&request)
        .split(' ')
        .nth(1)
        .unwrap_or("")
        .to_string();
    let (lock, cvar) = shared;
    let mut seen = lock.lock().unwrap();
    seen.push(request);
    cvar.notify_all();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < expect && Instant::now() < deadline {
        seen = cvar.wait_timeout(seen, PATIENCE / 4).unwrap().0;
    }
    let all_arrived = seen.len() >= expect;
    drop(seen);
    if path == "/empty" {
        return;
    }
    let reply = if all_arrived {
        response_for(&path)
    } else {
        b"HTTP/1.0 503 Not concurrent\r\n\r\n".to_vec()
    };
    let _ = conn.write_all(&reply);
}

#[test]
fn fetches_concurrently_and_prints_responses_in_argument_order() {
    for backend in BACKENDS {
        let server = HttpServer::start(3);
        let paths = ["/a", "/big", "/c?x=1"];
        let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
        let mut args = vec![backend];
        args.extend(urls.iter().map(String::as_str));
        let (status, out, err) = run(NAME, &args, b"");
        assert!(status.success(), "{backend}: {status}; stderr:\n{err}");
        let expected: Vec<u8> = paths.iter().flat_map(|p| response_for(p)).collect();
        assert!(
            out == expected,
            "{backend}: stdout is not the three responses in order"
        );

        let mut requests = server.requests();
        requests.sort();
        let mut want: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| format!("GET {p} HTTP/1.0\r\nHost: {}\r\n\r\n", server.addr).into_bytes())
            .collect();
        want.sort();
        assert_eq!(requests, want, "{backend}: requests");
    }
}

#[test]
fn a_failing_url_is_reported_and_the_others_complete() {
    for backend in BACKENDS {
        let server = HttpServer::start(3);
        let (held, refused) = busy_port();
        drop(held); // nothing listens there now
        let refused_url = format!("http://{refused}/");
        let (good1, good2, empty) = (server.url("/one"), server.url("/two"), server.url("/empty"));
        let bad = [
            refused_url.as_str(),
            "ftp://example.com/",
            "http://:80/",
            "http://no-such-host.invalid/",
            empty.as_str(),
        ];
        let mut args = vec![backend, good1.as_str(), bad[0], bad[1], bad[2]];
        args.extend([bad[3], good2.as_str(), bad[4]]);
        let (status, out, err) = run(NAME, &args, b"");

        assert!(
            !status.success() && status.code().is_some(),
            "{backend}: {status}"
        );
        assert!(!err.contains("panicked"), "{backend}: stderr:\n{err}");
        let mut expected = response_for("/one");
        expected.extend(response_for("/two"));
        assert!(
            out == expected,
            "{backend}: stdout is not the two good responses"
        );
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), bad.len(), "{backend}: stderr:\n{err}");
        for (line, url) in lines.iter().zip(bad) {
            assert!(
                line.starts_with("error: ") && line.contains(url),
                "{backend}: {line:?} should name {url}"
            );
        }
        assert!(lines[0].contains("refused"), "{backend}: {}", lines[0]);
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    assert_bad_args(NAME, &[], "URL");
    assert_bad_args(NAME, &["--poll"], "URL");
    assert_bad_args(NAME, &["--frobnicate", "http://127.0.0.1/"], "--frobnicate");
    assert_bad_args(
        NAME,
        &["--poll", "--select", "http://127.0.0.1/"],
        "--select",
    );
}

/// A one-connection server on a thread: reads the request, then runs
/// `reply` on the connection. Returns its URL.
fn one_shot_server(path: &str, reply: impl FnOnce(TcpStream) + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        reply(conn);
    });
    format!("http://{addr}{path}")
}

/// A server that accepts and never answers: with `--timeout 1` that URL
/// fails with a one-line error naming it, after about a second, and the
/// URLs after it are still written, in order.
#[test]
fn a_silent_server_times_out_and_the_others_complete() {
    for backend in BACKENDS {
        let silent = one_shot_server("/silent", |conn| {
            thread::sleep(PATIENCE); // holds the connection, says nothing
            drop(conn);
        });
        let server = HttpServer::start(2);
        let (one, two) = (server.url("/one"), server.url("/two"));
        let start = Instant::now();
        let (status, out, err) = run(NAME, &[backend, "--timeout", "1", &silent, &one, &two], b"");
        let elapsed = start.elapsed();
        assert!(
            !status.success() && status.code().is_some(),
            "{backend}: {status}"
        );
        assert!(!err.contains("panicked"), "{backend}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{backend}: stderr:\n{err}");
        assert!(
            lines[0].starts_with("error: ")
                && lines[0].contains(&silent)
                && lines[0].contains("timed out"),
            "{backend}: {:?}",
            lines[0]
        );
        let mut expected = response_for("/one");
        expected.extend(response_for("/two"));
        assert!(
            out == expected,
            "{backend}: stdout is not the two other responses"
        );
        assert!(
            elapsed >= std::time::Duration::from_millis(900) && elapsed < PATIENCE,
            "{backend}: took {elapsed:?}"
        );
    }
}

/// A slow stdout holds the loop (the head fetch's output is written to
/// stdout with blocking writes) past another fetch's deadline, while that
/// fetch's server keeps sending a byte every 0.4 s: that is progress, and
/// the fetch completes; it used to fail with "no progress for 1 s".
#[test]
fn a_slow_stdout_does_not_time_out_a_fetch_that_makes_progress() {
    for backend in BACKENDS {
        let big = one_shot_server("/big", |mut conn| {
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
            for _ in 0..200 {
                if conn.write_all(&[b'b'; 64 * 1024]).is_err() {
                    return;
                }
            }
        });
        let trickle = one_shot_server("/trickle", |mut conn| {
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
            for _ in 0..8 {
                thread::sleep(std::time::Duration::from_millis(400));
                if conn.write_all(b"t").is_err() {
                    return;
                }
            }
        });
        let mut proc = Proc::spawn_with(
            NAME,
            &[backend, "--timeout", "1", &big, &trickle],
            std::process::Stdio::null(),
            std::process::Stdio::piped(),
        );
        let err = proc.collect_stderr();
        let mut stdout = proc.child.stdout.take().unwrap();
        // A slow reader for 4 s, then a fast one.
        let start = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        while start.elapsed() < std::time::Duration::from_secs(4) {
            got += stdout.read(&mut buf).unwrap();
            thread::sleep(std::time::Duration::from_millis(1500));
        }
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        got += rest.len();
        let status = proc
            .wait_timeout(PATIENCE)
            .unwrap_or_else(|| panic!("{backend}: http_client did not exit"));
        let err = err.recv_timeout(PATIENCE).unwrap_or_default();
        assert!(status.success(), "{backend}: {status}, stderr:\n{err}");
        assert!(rest.ends_with(b"tttttttt"), "{backend}: the trickle's body");
        assert_eq!(got, 2 * 19 + 200 * 64 * 1024 + 8, "{backend}: bytes out");
    }
}

/// The peak resident set size of process `pid` in KiB (`VmHWM`).
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

/// A 600 MiB response, second in line behind a response that comes late:
/// it is held back (bounded) while the first is awaited, then streamed to
/// stdout as it arrives. The client's peak RSS stays far below the size of
/// the response.
#[test]
fn a_600_mib_response_streams_in_bounded_memory() {
    const SIZE: usize = 600 << 20;
    const HEADER: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
    let pattern = Arc::new(random_bytes(1 << 20, 99));
    for backend in BACKENDS {
        let late = one_shot_server("/late", |mut conn| {
            thread::sleep(std::time::Duration::from_millis(300));
            let _ = conn.write_all(&response_for("/late"));
        });
        let body = Arc::clone(&pattern);
        let huge = one_shot_server("/huge", move |mut conn| {
            let _ = conn.write_all(HEADER);
            for _ in 0..SIZE / body.len() {
                if conn.write_all(&body).is_err() {
                    return;
                }
            }
        });
        let mut proc = Proc::spawn_with(
            NAME,
            &[backend, &late, &huge],
            std::process::Stdio::null(),
            std::process::Stdio::piped(),
        );
        let err = proc.collect_stderr();
        let mut stdout = proc.child.stdout.take().unwrap();
        let first = response_for("/late");
        let total = first.len() + HEADER.len() + SIZE;
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        let mut peak = 0;
        let mut mismatch = None;
        while got < total {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            // Check the bytes against what was sent, at their offset, a
            // slice at a time (a byte loop is slow in a debug build).
            let mut i = 0;
            while i < n && mismatch.is_none() {
                let at = got + i;
                let (want, len): (&[u8], usize) = if at < first.len() {
                    let k = (first.len() - at).min(n - i);
                    (&first[at..at + k], k)
                } else if at < first.len() + HEADER.len() {
                    let off = at - first.len();
                    let k = (HEADER.len() - off).min(n - i);
                    (&HEADER[off..off + k], k)
                } else {
                    let off = (at - first.len() - HEADER.len()) % pattern.len();
                    let k = (pattern.len() - off).min(n - i);
                    (&pattern[off..off + k], k)
                };
                if buf[i..i + len] != *want {
                    mismatch = Some(at);
                }
                i += len;
            }
            got += n;
            if mismatch.is_some() {
                break;
            }
            if got > total - (8 << 20) && peak == 0 {
                peak = peak_rss_kib(proc.pid()); // still running: the end is unread
            }
        }
        let status = proc.wait_timeout(PATIENCE).expect("http_client hung");
        let err = err.recv_timeout(PATIENCE).unwrap_or_default();
        assert_eq!(
            mismatch, None,
            "{backend}: stdout differs at byte {mismatch:?}"
        );
        assert_eq!(got, total, "{backend}: stdout length; stderr:\n{err}");
        assert!(status.success(), "{backend}: {status}; stderr:\n{err}");
        assert!(
            peak > 0 && peak < 64 * 1024,
            "{backend}: peak RSS {peak} KiB"
        );
    }
}

/// The server resets the connection in the middle of the body: that URL
/// fails with an error naming it (a reset is not a clean end), the next
/// URL is still written.
#[test]
fn a_reset_in_the_middle_of_the_body_is_an_error() {
    for backend in BACKENDS {
        let reset_url = one_shot_server("/reset", |mut conn| {
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 1000000\r\n\r\n");
            let _ = conn.write_all(&random_bytes(100_000, 5));
            thread::sleep(std::time::Duration::from_millis(100));
            reset(conn);
        });
        let server = HttpServer::start(1);
        let good = server.url("/good");
        let (status, out, err) = run(NAME, &[backend, &reset_url, &good], b"");
        assert!(
            !status.success() && status.code().is_some(),
            "{backend}: {status}"
        );
        assert!(!err.contains("panicked"), "{backend}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{backend}: stderr:\n{err}");
        assert!(
            lines[0].contains(&reset_url) && lines[0].to_lowercase().contains("reset"),
            "{backend}: {:?}",
            lines[0]
        );
        assert!(
            out.ends_with(&response_for("/good")),
            "{backend}: the good response is missing"
        );
    }
}
