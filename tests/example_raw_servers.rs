//! The raw select_server and poll_server examples as processes: the output
//! contract (`Got connection from`, each chunk, `disconnected`), resets,
//! many clients, fds above FD_SETSIZE, bad arguments, address in use,
//! signals.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const SERVERS: [&str; 2] = ["select_server", "poll_server"];

fn start(name: &str) -> Server {
    Server::start(name, &["--bind", "127.0.0.1:0"])
}

/// Connects and waits for the server's `Got connection from` line for it.
fn connect_and_greet(server: &Server) -> TcpStream {
    let c = connect(server.addr);
    let me = c.local_addr().unwrap();
    assert_eq!(server.next_line(), format!("Got connection from {me}"));
    c
}

#[test]
fn prints_connection_each_chunk_and_disconnect() {
    for name in SERVERS {
        let server = start(name);
        let mut c = connect_and_greet(&server);
        let me = c.local_addr().unwrap();
        c.write_all(b"hello").unwrap();
        assert_eq!(server.next_line(), "hello", "{name}");
        // Invalid UTF-8 is shown as U+FFFD; a chunk ending in a newline is
        // followed by an empty line.
        c.write_all(b"caf\xc3\xa9 \xff").unwrap();
        assert_eq!(server.next_line(), "caf\u{e9} \u{fffd}", "{name}");
        c.write_all(b"line\n").unwrap();
        assert_eq!(server.next_line(), "line", "{name}");
        assert_eq!(server.next_line(), "", "{name}");
        drop(c);
        assert_eq!(server.next_line(), format!("{me} disconnected"), "{name}");
    }
}

#[test]
fn a_client_that_resets_is_reported_and_the_server_goes_on() {
    for name in SERVERS {
        let server = start(name);
        let mut rude = connect_and_greet(&server);
        let rude_addr = rude.local_addr().unwrap();
        rude.write_all(b"bye").unwrap();
        assert_eq!(server.next_line(), "bye");
        reset(rude);
        assert_eq!(
            server.next_line(),
            format!("{rude_addr} disconnected"),
            "{name}"
        );

        let mut next = connect_and_greet(&server);
        next.write_all(b"still here").unwrap();
        assert_eq!(server.next_line(), "still here", "{name}");
    }
}

#[test]
fn serves_twenty_concurrent_clients() {
    for name in SERVERS {
        let server = start(name);
        let clients: Vec<TcpStream> = (0..20).map(|_| connect(server.addr)).collect();
        let mut expected: Vec<String> = Vec::new();
        for c in &clients {
            expected.push(format!("Got connection from {}", c.local_addr().unwrap()));
        }
        for (i, mut c) in clients.iter().enumerate() {
            c.write_all(format!("client-{i}").as_bytes()).unwrap();
            expected.push(format!("client-{i}"));
        }
        for c in &clients {
            expected.push(format!("{} disconnected", c.local_addr().unwrap()));
        }
        drop(clients);
        let mut seen: Vec<String> = (0..expected.len()).map(|_| server.next_line()).collect();
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected, "{name}");
    }
}

/// Starts `name` through bash with every fd from 10 to 1023 taken, so its
/// own fds get 3..9 and its clients soon get fds above FD_SETSIZE (1024).
fn start_with_fds_filled(name: &str) -> Server {
    let script = r#"ulimit -n 4096 || exit 97
for i in $(seq 10 1023); do eval "exec $i>/dev/null" 2>/dev/null; done
exec "$@""#;
    let child = Command::new("bash")
        .args(["-c", script, "fill-fds"])
        .arg(example_path(name))
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    Server::from_proc(Proc {
        child,
        name: name.to_string(),
    })
}

/// Connects one client and says whether the server accepted it (its `Got
/// connection from` line came) or refused it (closed it without a line).
fn accepted(server: &Server, c: &TcpStream) -> bool {
    let greeting = format!("Got connection from {}", c.local_addr().unwrap());
    c.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(line) = server.stdout.recv_timeout(Duration::from_millis(20)) {
            assert_eq!(line, greeting);
            c.set_nonblocking(false).unwrap();
            return true;
        }
        match (&*c).read(&mut [0u8; 16]) {
            Ok(0) => return false,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("unexpected read result {other:?}"),
        }
    }
    panic!("the server neither accepted nor refused the client");
}

#[test]
fn select_server_refuses_a_client_above_fd_setsize_and_goes_on() {
    let mut server = start_with_fds_filled("select_server");
    let mut kept = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let c = connect(server.addr);
        if accepted(&server, &c) {
            assert_eq!(refused, 0, "accepted a client after refusing one");
            kept.push(c);
        } else {
            refused += 1;
        }
    }
    assert!(refused > 0, "no client was refused: were the fds filled?");
    // The clients it kept are still served.
    for (i, mut c) in kept.iter().enumerate() {
        c.write_all(format!("kept-{i}").as_bytes()).unwrap();
        assert_eq!(server.next_line(), format!("kept-{i}"));
    }
    assert!(
        server.proc.child.try_wait().unwrap().is_none(),
        "select_server died"
    );
    let err = server.proc.collect_stderr();
    server.proc.signal(libc::SIGTERM);
    assert!(server.proc.wait_timeout(PATIENCE).is_some());
    let err = err.recv_timeout(PATIENCE).unwrap();
    assert!(
        err.contains("refusing connection from 127.0.0.1:"),
        "stderr:\n{err}"
    );
    assert!(err.contains("FD_SETSIZE"), "stderr:\n{err}");
}

#[test]
fn poll_server_serves_clients_above_fd_setsize() {
    let server = start_with_fds_filled("poll_server");
    // Its own fds take 3..9, so at least five of these get fds >= 1024.
    let clients: Vec<TcpStream> = (0..12).map(|_| connect(server.addr)).collect();
    for c in &clients {
        assert!(accepted(&server, c), "poll_server refused a client");
    }
    for (i, mut c) in clients.iter().enumerate() {
        c.write_all(format!("high-{i}").as_bytes()).unwrap();
        assert_eq!(server.next_line(), format!("high-{i}"));
    }
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    for name in SERVERS {
        assert_bad_args(name, &["--bind", "nonsense"], "--bind");
        assert_bad_args(name, &["--frobnicate"], "--frobnicate");
    }
}

#[test]
fn address_in_use_is_a_one_line_error() {
    for name in SERVERS {
        let (_held, addr) = busy_port();
        assert_runtime_failure(name, &["--bind", &addr.to_string()], "in use");
    }
}

#[test]
fn sigterm_and_sigint_end_the_server() {
    for name in SERVERS {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let mut server = start(name);
            let _client = connect_and_greet(&server);
            assert_ends_on_signal(&mut server.proc, signal);
        }
    }
}

/// `--trace` prints the loop's trace format: every fd labelled once, each
/// wait numbered and timestamped with what was asked and what came back,
/// what each `accept` and `recv` did (and returned), and when a client
/// leaves the list. The recorded trace draws as a picture.
#[test]
fn trace_shows_each_wait_what_recv_returned_and_the_close() {
    for (name, call, ready) in [
        ("select_server", "select(readfds={", "readable -> recv"),
        ("poll_server", "poll(nfds=", "POLLIN -> recv"),
    ] {
        let mut server = Server::start(name, &["--bind", "127.0.0.1:0", "--trace"]);
        let mut c = connect_and_greet(&server);
        let me = c.local_addr().unwrap();
        c.write_all(b"traced").unwrap();
        assert_eq!(server.next_line(), "traced");
        drop(c);
        assert_eq!(server.next_line(), format!("{me} disconnected"));
        let err = server.proc.collect_stderr();
        server.proc.signal(libc::SIGTERM);
        assert!(server.proc.wait_timeout(PATIENCE).is_some());
        let err = err.recv_timeout(PATIENCE).unwrap();
        let has = |what: &str| {
            assert!(err.contains(what), "{name} --trace lacks {what:?}:\n{err}");
        };
        has(": opened: signals SIGINT,SIGTERM");
        has(&format!(": opened: listener {}", server.addr));
        has(&format!(": opened: connection from {me}"));
        has(&format!("] iteration 1: {call}"));
        has("] iteration 2: ");
        has(ready);
        has("recv(1024) returned 6 bytes");
        has("recv(1024) returned 0: the peer closed");
        has("closed, removed from the client list");
        has("-> stop: a signal arrived");
        // Every wait line carries a timestamp.
        for line in err.lines().filter(|l| l.contains("iteration ")) {
            assert!(line.starts_with("[+"), "{name}: no timestamp on {line:?}");
        }

        // One command turns the recorded trace into a picture.
        let (status, svg, perr) = run("trace_picture", &["--svg"], err.as_bytes());
        assert!(status.success(), "trace_picture on {name}'s trace: {perr}");
        let svg = String::from_utf8_lossy(&svg);
        assert!(svg.contains(&format!("connection from {me}")), "{name}");
        assert!(svg.contains(">iteration 2<"), "{name}");
        thread::yield_now();
    }
}

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name (field 2) may hold spaces: count from after its ')'.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Out of fds (EMFILE), a pending connection keeps the listener readable:
/// a loop that keeps watching it spins at 100% CPU. The raw servers leave
/// the listener out of the wait for a moment instead, and accept the
/// waiting clients once fds free up.
#[test]
fn out_of_fds_the_raw_servers_do_not_spin_and_accept_again_later() {
    for name in SERVERS {
        let server = Server::start_with_fd_limit(name, 12, &["--bind", "127.0.0.1:0"]);
        let pid = server.proc.pid();
        // More clients than fds: the rest wait in the listen backlog.
        let clients: Vec<TcpStream> = (0..10).map(|_| connect(server.addr)).collect();
        let mut greeted = 0;
        while server
            .stdout
            .recv_timeout(Duration::from_millis(300))
            .is_ok()
        {
            greeted += 1;
        }
        assert!(
            greeted < clients.len(),
            "{name}: every client got an fd; the limit did not bite"
        );
        let before = cpu_ticks(pid);
        thread::sleep(Duration::from_millis(1000));
        let used = cpu_ticks(pid) - before;
        // A spin burns ~100 ticks a second; a paused listener a few at most.
        assert!(
            used < 50,
            "{name}: {used} ticks of CPU in 1 s while out of fds"
        );
        // Hang up: fds free, and the waiting clients are accepted.
        drop(clients);
        let mut later = 0;
        let deadline = Instant::now() + PATIENCE;
        while later == 0 && Instant::now() < deadline {
            if let Ok(line) = server.stdout.recv_timeout(Duration::from_millis(100)) {
                later += usize::from(line.starts_with("Got connection from"));
            }
        }
        assert!(later > 0, "{name}: no client accepted after fds freed");
    }
}
