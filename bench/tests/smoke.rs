//! The benchmark's own binaries, end to end on 127.0.0.1: every server
//! echoes what the load generator sends (both modes), and the load generator
//! notices a corrupted echo. Bounded in time; no speed is asserted.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &str) -> Server {
    let mut child = Command::new(bin)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    Server { child, addr }
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(["--timeout", "30"])
        .output()
        .unwrap()
}

fn field(out: &Output, key: &str) -> f64 {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("result ")).unwrap();
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap()
        .parse()
        .unwrap()
}

const SERVERS: [&str; 4] = [
    env!("CARGO_BIN_EXE_floor_poll"),
    env!("CARGO_BIN_EXE_floor_select"),
    env!("CARGO_BIN_EXE_mio_echo"),
    env!("CARGO_BIN_EXE_thread_echo"),
];

#[test]
fn every_server_echoes_pingpong_and_bulk_byte_exact() {
    for bin in SERVERS {
        let server = start(bin);
        let out = loadgen(&["--addr", &server.addr, "--conns", "20", "--secs", "0.2"]);
        assert!(out.status.success(), "{bin}: {out:?}");
        assert!(field(&out, "roundtrips") > 0.0, "{bin}: {out:?}");
        let out = loadgen(&[
            "--addr",
            &server.addr,
            "--mode",
            "bulk",
            "--conns",
            "3",
            "--mib",
            "2",
            "--threads",
            "2",
        ]);
        assert!(out.status.success(), "{bin}: {out:?}");
        assert_eq!(field(&out, "bytes"), (3 * 2 * 1024 * 1024) as f64, "{bin}");
    }
}

#[test]
fn loadgen_rejects_a_corrupted_echo() {
    for mode in ["pingpong", "bulk"] {
        // an echo server that flips one bit of the 100th byte
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut buf = [0u8; 4096];
            let mut seen = 0usize;
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if seen <= 100 && 100 < seen + n {
                    buf[100 - seen] ^= 1;
                }
                seen += n;
                if s.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let out = loadgen(&["--addr", &addr, "--mode", mode, "--mib", "1", "--secs", "1"]);
        assert!(!out.status.success(), "{mode}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("differ"),
            "{mode}: {out:?}"
        );
        server.join().unwrap();
    }
}

#[test]
fn loadgen_waits_for_go_and_keeps_connections_until_quit() {
    let server = start(env!("CARGO_BIN_EXE_floor_poll"));
    let mut lg = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--addr",
            &server.addr,
            "--conns",
            "5",
            "--secs",
            "0.2",
            "--wait-go",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = lg.stdin.take().unwrap();
    let mut lines = BufReader::new(lg.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    writeln!(stdin, "go").unwrap();
    let result = lines.next().unwrap().unwrap();
    assert!(
        result.starts_with("result mode=pingpong conns=5 "),
        "{result}"
    );
    // still connected: the process is alive until told to quit
    std::thread::sleep(Duration::from_millis(100));
    assert!(lg.try_wait().unwrap().is_none());
    writeln!(stdin, "quit").unwrap();
    drop(stdin);
    assert!(lg.wait().unwrap().success());
}

#[test]
fn loadgen_counts_a_fixed_number_of_round_trips_beside_idle_connections() {
    let server = start(env!("CARGO_BIN_EXE_floor_poll"));
    let out = loadgen(&[
        "--addr",
        &server.addr,
        "--conns",
        "3",
        "--idle",
        "40",
        "--roundtrips",
        "50",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(field(&out, "roundtrips"), 150.0, "{out:?}");
    assert_eq!(field(&out, "idle"), 40.0, "{out:?}");
    assert_eq!(field(&out, "conns"), 3.0, "{out:?}");
}

#[test]
fn loadgen_fails_when_the_server_closes_an_idle_connection() {
    // echoes forever on the active connection; echoes one message on the
    // idle one, then closes it (a message starts with its connection's id:
    // 0 is the active one, 1 the idle one)
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                loop {
                    if s.read_exact(&mut buf).is_err() || s.write_all(&buf).is_err() {
                        return;
                    }
                    if buf[..8] == 1u64.to_le_bytes() {
                        std::thread::sleep(Duration::from_millis(200));
                        return; // closes the idle connection
                    }
                }
            });
        }
    });
    let out = loadgen(&[
        "--addr", &addr, "--conns", "1", "--idle", "1", "--secs", "3",
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("idle connection 1 closed"),
        "{out:?}"
    );
}

#[test]
fn bench_counts_instructions_per_round_trip_under_callgrind() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--no-build",
            "--pass",
            "instructions",
            "--only",
            "floor poll",
        ])
        .args(["--instr-reps", "1", "--instr-roundtrips", "200"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let have_valgrind = Command::new("sh")
        .args(["-c", "command -v valgrind && command -v callgrind_control"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_valgrind {
        assert!(text.contains("valgrind is not installed"), "{text}");
        return;
    }
    // "| floor poll(2) | 354 | – | 48,131 | – |"
    let row = text
        .lines()
        .find(|l| l.starts_with("| floor poll(2) |"))
        .unwrap_or_else(|| panic!("no floor poll(2) row in:\n{text}"));
    let cells: Vec<f64> = row
        .split('|')
        .filter_map(|c| c.trim().replace(',', "").parse().ok())
        .collect();
    assert_eq!(cells.len(), 2, "{row}");
    let (busy, idle) = (cells[0], cells[1]);
    assert!(busy > 10.0 && busy < 100_000.0, "{row}");
    // every iteration walks the 5,000 idle pollfds
    assert!(idle > 10.0 * busy, "{row}");
    // a run of one pass writes no file of the full run
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("bench: done"), "{log}");
    assert!(!log.contains("bench: wrote"), "{log}");
}
