//! The kv_daemon example as a process, on every backend: EXAMPLES.md's
//! contract clause by clause (the protocol on TCP and a Unix socket, reply
//! order with pipelining and SLOW, UDP STATS, idle timeouts, the stats
//! line, SIGHUP reload, `load =` children, graceful shutdown on SIGTERM,
//! arguments).

mod common;

use common::{
    assert_a_non_reader_is_closed_after_two_idle_periods, assert_bad_args, assert_runtime_failure,
    busy_port, children_of, flood_without_reading, run, LogLines, Server, BACKENDS, PATIENCE,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

const NAME: &str = "kv_daemon";

/// A scratch directory for config files and sockets, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("kvd-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon: its TCP address, the other `listening on` lines, and
/// its log.
struct Daemon {
    server: Server,
    log: LogLines,
    unix: Option<PathBuf>,
    udp: Option<SocketAddr>,
}

impl Daemon {
    /// Starts kv_daemon on `backend`, TCP on a free port, with `extra`
    /// arguments (`--unix`/`--udp` lines are read and checked).
    fn start(backend: &str, extra: &[&str]) -> Daemon {
        let mut args = vec!["--tcp", "127.0.0.1:0", backend];
        args.extend_from_slice(extra);
        let mut server = Server::start(NAME, &args);
        let log = server.proc.log_lines();
        let mut unix = None;
        let mut udp = None;
        if let Some(i) = extra.iter().position(|a| *a == "--unix") {
            let line = server.next_line();
            assert_eq!(line, format!("listening on unix:{}", extra[i + 1]));
            unix = Some(PathBuf::from(extra[i + 1]));
        }
        if extra.contains(&"--udp") {
            let line = server.next_line();
            let addr = line
                .strip_prefix("listening on udp:")
                .unwrap_or_else(|| panic!("expected the udp line, got {line:?}"));
            udp = Some(addr.parse().expect("udp address"));
        }
        Daemon {
            server,
            log,
            unix,
            udp,
        }
    }

    fn connect(&self) -> Client<TcpStream> {
        let s = TcpStream::connect_timeout(&self.server.addr, PATIENCE).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_write_timeout(Some(PATIENCE)).unwrap();
        Client::new(s.try_clone().unwrap(), s)
    }

    fn connect_unix(&self) -> Client<UnixStream> {
        let path = self.unix.as_ref().expect("started with --unix");
        let s = UnixStream::connect(path).expect("connect unix");
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_write_timeout(Some(PATIENCE)).unwrap();
        Client::new(s.try_clone().unwrap(), s)
    }

    fn pid(&self) -> i32 {
        self.server.proc.pid()
    }

    fn signal(&self, signal: i32) {
        self.server.proc.signal(signal);
    }

    /// Waits for a log line containing `needle`; panics with the log if it
    /// does not come within `limit`.
    fn expect_log(&mut self, needle: &str, limit: Duration) -> String {
        match self.log.wait_for(needle, limit) {
            Some(line) => line,
            None => panic!(
                "no log line with {needle:?} in {limit:?}; log:\n{}",
                self.log.text()
            ),
        }
    }

    /// SIGTERM, then asserts exit status 0 within 5 s; returns how long it
    /// took.
    fn terminate(&mut self) -> Duration {
        let start = Instant::now();
        self.signal(libc::SIGTERM);
        let status = self
            .server
            .proc
            .wait_timeout(PATIENCE)
            .unwrap_or_else(|| panic!("kv_daemon did not exit after SIGTERM"));
        let took = start.elapsed();
        assert_eq!(status.code(), Some(0), "log:\n{}", self.log.text());
        assert!(took < Duration::from_secs(5), "exit took {took:?}");
        assert!(!self.log.text().contains("panicked"), "{}", self.log.text());
        took
    }
}

/// A protocol client over any stream.
struct Client<S: Read + Write> {
    reader: BufReader<S>,
    writer: S,
}

impl<S: Read + Write> Client<S> {
    fn new(reader: S, writer: S) -> Self {
        Client {
            reader: BufReader::new(reader),
            writer,
        }
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("send");
    }

    /// The next reply, which must end in `\r\n` (returned without it).
    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a reply");
        assert!(n > 0, "the daemon closed the connection");
        assert!(
            line.ends_with("\r\n"),
            "reply {line:?} does not end in \\r\\n"
        );
        line.truncate(line.len() - 2);
        line
    }

    /// Sends one command line and returns the reply.
    fn ask(&mut self, command: &str) -> String {
        self.send(&format!("{command}\n"));
        self.line()
    }

    /// Asserts the daemon closes the connection with nothing more sent.
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("end of stream, not a reset");
        assert!(rest.is_empty(), "more after the last reply: {rest:?}");
    }
}

#[test]
fn protocol_set_get_del_stats_quit_and_errors() {
    for backend in BACKENDS {
        let mut d = Daemon::start(backend, &[]);
        let mut c = d.connect();
        assert_eq!(c.ask("SET k hello  world"), "OK", "{backend}");
        assert_eq!(c.ask("GET k"), "VALUE hello  world", "{backend}");
        c.send("SET k2 v2\r\n"); // \r\n accepted as well
        assert_eq!(c.line(), "OK");
        assert_eq!(c.ask("GET k2"), "VALUE v2");
        assert_eq!(c.ask("GET nope"), "NOT_FOUND");
        assert_eq!(c.ask("DEL k2"), "DELETED");
        assert_eq!(c.ask("DEL k2"), "NOT_FOUND");
        assert_eq!(c.ask("STATS"), "STATS connections=1 keys=1 commands=8");
        for bad in [
            "FROB",
            "GET",
            "GET a b",
            "SET k",
            "SLOW 10001 k",
            "SLOW x k",
            "",
        ] {
            assert_eq!(c.ask(bad), "ERROR unknown command", "{backend}: {bad:?}");
        }
        assert_eq!(c.ask("QUIT"), "BYE");
        c.expect_closed();

        // A line over 64 KiB: the error, then the close.
        let mut long = d.connect();
        long.send(&"x".repeat(70_000));
        assert_eq!(long.line(), "ERROR line too long", "{backend}");
        long.expect_closed();

        // The daemon serves on.
        let mut again = d.connect();
        assert_eq!(again.ask("GET k"), "VALUE hello  world");
        d.terminate();
    }
}

#[test]
fn pipelined_commands_keep_their_order_around_a_slow_one() {
    for backend in BACKENDS {
        let mut d = Daemon::start(backend, &[]);
        let mut a = d.connect();
        let mut b = d.connect();
        let sent = Instant::now();
        a.send("SET k 1\nSLOW 1500 k\nSET k 2\nGET k\nSTATS\n");
        assert_eq!(a.line(), "OK", "{backend}");
        // Another client is served while the SLOW waits.
        let asked = Instant::now();
        assert_eq!(b.ask("GET k"), "VALUE 2", "{backend}");
        assert!(
            asked.elapsed() < Duration::from_millis(1000),
            "{backend}: another client waited {:?} behind the SLOW",
            asked.elapsed()
        );
        // The SLOW's answer is GET's at its time, and the replies after it
        // waited for it.
        assert_eq!(a.line(), "VALUE 2", "{backend}");
        assert!(
            sent.elapsed() >= Duration::from_millis(1450),
            "{backend}: SLOW answered after {:?}",
            sent.elapsed()
        );
        assert_eq!(a.line(), "OK");
        assert_eq!(a.line(), "VALUE 2");
        assert!(a.line().starts_with("STATS connections=2 keys=1 commands="));

        // Two SLOWs: the shorter one finishes first but answers second.
        a.send("SET x 1\nSET y 2\nSLOW 700 x\nSLOW 50 y\nGET y\nQUIT\n");
        for want in ["OK", "OK", "VALUE 1", "VALUE 2", "VALUE 2", "BYE"] {
            assert_eq!(a.line(), want, "{backend}");
        }
        a.expect_closed();

        // A client that half-closes (`nc -N`) with a SLOW owed still gets it.
        let s = TcpStream::connect_timeout(&d.server.addr, PATIENCE).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut h = Client::new(s.try_clone().unwrap(), s);
        h.send("SLOW 300 y\nGET x\n");
        h.writer.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(h.line(), "VALUE 2", "{backend}: half-closed client");
        assert_eq!(h.line(), "VALUE 1", "{backend}: half-closed client");
        h.expect_closed();
        d.terminate();
    }
}

#[test]
fn unix_socket_and_udp_stats() {
    for backend in BACKENDS {
        let scratch = Scratch::new("unix");
        let sock = scratch.path("kv.sock");
        // A socket left at the path (a daemon that crashed) is replaced.
        drop(std::os::unix::net::UnixListener::bind(&sock).expect("stale socket"));
        let sock_arg = sock.to_str().expect("utf-8 path");
        let mut d = Daemon::start(backend, &["--unix", sock_arg, "--udp", "127.0.0.1:0"]);
        let mut u = d.connect_unix();
        assert_eq!(u.ask("SET u 1"), "OK", "{backend}");
        let mut t = d.connect();
        assert_eq!(t.ask("GET u"), "VALUE 1", "{backend}: one store for both");

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(PATIENCE)).unwrap();
        udp.send_to(b"STATS", d.udp.unwrap()).unwrap();
        let mut buf = [0u8; 512];
        let (n, from) = udp.recv_from(&mut buf).expect("a STATS datagram back");
        assert_eq!(from, d.udp.unwrap());
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "STATS connections=2 keys=1 commands=3",
            "{backend}"
        );
        assert_eq!(u.ask("QUIT"), "BYE");
        u.expect_closed();
        d.terminate();
        assert!(!sock.exists(), "{backend}: the socket path is left at exit");
    }
}

#[test]
fn idle_connections_get_bye_idle_and_input_pushes_the_deadline_back() {
    for backend in BACKENDS {
        let mut d = Daemon::start(backend, &["--idle-timeout", "1"]);
        let mut c = d.connect();
        // 1.8 s of activity, never 1 s idle: no BYE.
        for _ in 0..3 {
            sleep(Duration::from_millis(600));
            assert_eq!(c.ask("GET k"), "NOT_FOUND", "{backend}");
        }
        // A partial line is input too.
        sleep(Duration::from_millis(600));
        c.send("GE");
        sleep(Duration::from_millis(600));
        c.send("T k\n");
        assert_eq!(
            c.line(),
            "NOT_FOUND",
            "{backend}: pushed back by a partial line"
        );
        let quiet = Instant::now();
        assert_eq!(c.line(), "BYE idle", "{backend}");
        let idle = quiet.elapsed();
        assert!(
            idle >= Duration::from_millis(800) && idle < Duration::from_millis(2500),
            "{backend}: BYE idle after {idle:?}"
        );
        c.expect_closed();
        d.terminate();
    }
}

/// A client that sends commands without reading the replies (until the
/// daemon stops reading it) is told `BYE idle` after the idle timeout, and
/// closed one idle period later if it still does not read: it does not
/// hold its connection and queued replies for good.
#[test]
fn a_client_that_never_reads_its_replies_is_closed_after_two_idle_periods() {
    for backend in BACKENDS {
        let mut d = Daemon::start(backend, &["--idle-timeout", "1"]);
        let c = TcpStream::connect_timeout(&d.server.addr, PATIENCE).expect("connect");
        assert_a_non_reader_is_closed_after_two_idle_periods(
            d.server.proc.pid(),
            &c,
            &b"GET k\n".repeat(8192),
            backend,
        );
        d.expect_log("not reading its replies, closing", PATIENCE);
        drop(c);
        d.terminate();
    }
}

#[test]
fn a_stats_line_every_second_on_stderr() {
    for backend in BACKENDS {
        let mut d = Daemon::start(backend, &[]);
        d.expect_log(
            "stats connections=0 keys=0 commands=0",
            Duration::from_secs(3),
        );
        let mut c = d.connect();
        assert_eq!(c.ask("SET a 1"), "OK");
        d.expect_log(
            "stats connections=1 keys=1 commands=1",
            Duration::from_secs(3),
        );
        let start = Instant::now();
        d.expect_log(
            "stats connections=1 keys=1 commands=1",
            Duration::from_secs(3),
        );
        assert!(start.elapsed() < Duration::from_millis(2500), "{backend}");
        d.terminate();
    }
}

#[test]
fn sighup_reloads_the_config_and_a_bad_one_keeps_the_old_settings() {
    for backend in BACKENDS {
        let scratch = Scratch::new("hup");
        let config = scratch.write("kv.conf", "# the daemon's settings\n\nidle_timeout = 300\n");
        let mut d = Daemon::start(backend, &["--config", config.to_str().unwrap()]);
        let mut before = d.connect();
        assert_eq!(before.ask("SET k v"), "OK");

        std::fs::write(&config, "idle_timeout = 1\n").unwrap();
        d.signal(libc::SIGHUP);
        d.expect_log("reloaded", PATIENCE);
        let mut c = d.connect();
        let start = Instant::now();
        assert_eq!(c.line(), "BYE idle", "{backend}: the new idle timeout");
        assert!(start.elapsed() < Duration::from_millis(2500), "{backend}");
        c.expect_closed();

        std::fs::write(&config, "idle_timeout = banana\n").unwrap();
        d.signal(libc::SIGHUP);
        let err = d.expect_log("keeping the old settings", PATIENCE);
        assert!(err.contains("line 1"), "{backend}: {err}");
        let mut c = d.connect();
        assert_eq!(
            c.line(),
            "BYE idle",
            "{backend}: the old (reloaded) setting stays"
        );
        assert_eq!(before.ask("GET k"), "VALUE v", "{backend}: still serving");
        d.terminate();
    }
}

#[test]
fn a_bad_config_at_start_is_one_line_and_exit_2() {
    let scratch = Scratch::new("badcfg");
    let bad = scratch.write("bad.conf", "idle_timeout = 5\nfrobnicate = yes\n");
    let missing = scratch.path("missing.conf");
    for backend in BACKENDS {
        for path in [&bad, &missing] {
            let args = [
                "--tcp",
                "127.0.0.1:0",
                backend,
                "--config",
                path.to_str().unwrap(),
            ];
            let (status, out, err) = run(NAME, &args, b"");
            assert_eq!(status.code(), Some(2), "{backend} {path:?}: {err}");
            assert!(
                out.is_empty(),
                "started anyway: {}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(err.contains(path.to_str().unwrap()), "{err}");
        }
    }
}

#[test]
fn load_relays_a_childs_output_into_the_store_and_leaves_no_zombie() {
    for backend in BACKENDS {
        let scratch = Scratch::new("load");
        let config = scratch.write(
            "kv.conf",
            "load = echo quick 1; exit 3\n\
             load = printf 'k1 v1\\nk2 two words\\n'; echo a note >&2; sleep 1; printf 'k3 v3'\n",
        );
        let mut d = Daemon::start(backend, &["--config", config.to_str().unwrap()]);
        d.expect_log("loaded 1 keys (exit status 3)", PATIENCE);
        // The slow one is still running: a child of the daemon, served
        // alongside clients.
        let mut c = d.connect();
        assert_eq!(c.ask("GET quick"), "VALUE 1", "{backend}");
        let start = Instant::now();
        let mut running = Vec::new();
        while start.elapsed() < PATIENCE {
            running = children_of(d.pid());
            if !running.is_empty() || c.ask("GET k3") == "VALUE v3" {
                break;
            }
            sleep(Duration::from_millis(20));
        }
        assert!(
            !running.is_empty(),
            "{backend}: the load command ran as a child"
        );
        d.expect_log("loaded 3 keys (exit status 0)", PATIENCE);
        let log = d.log.text();
        assert!(
            log.contains("load: a note"),
            "{backend}: the child's stderr is logged:\n{log}"
        );
        assert_eq!(c.ask("GET k1"), "VALUE v1");
        assert_eq!(c.ask("GET k2"), "VALUE two words");
        assert_eq!(
            c.ask("GET k3"),
            "VALUE v3",
            "{backend}: the last line had no newline"
        );
        let left = children_of(d.pid());
        assert!(
            left.is_empty(),
            "{backend}: children left (zombies?): {left:?}"
        );
        d.terminate();
    }
}

/// A loaded line over the line limit is ignored whole, as the log says:
/// its tail (the last `a`s and ` K V`) is not stored as a key, so one key
/// is loaded, not two.
#[test]
fn load_ignores_an_over_long_line_whole() {
    for backend in BACKENDS {
        let scratch = Scratch::new("load-long");
        let config = scratch.write(
            "kv.conf",
            "load = head -c 200000 /dev/zero | tr '\\0' a; printf ' K V\\nk2 v2\\n'\n",
        );
        let mut d = Daemon::start(backend, &["--config", config.to_str().unwrap()]);
        d.expect_log("loaded 1 keys (exit status 0)", PATIENCE);
        let log = d.log.text();
        assert!(
            log.contains("a line over 65536 bytes, ignored"),
            "{backend}:\n{log}"
        );
        let mut c = d.connect();
        assert_eq!(c.ask("GET k2"), "VALUE v2", "{backend}");
        d.terminate();
    }
}

/// SIGTERM with a client that reads none of its replies: the grace period
/// ends, the daemon closes what is left and exits 0, within the
/// contract's 5 s (the grace period was 5 s itself: the exit came after).
#[test]
fn sigterm_exits_within_5_s_even_with_a_client_that_never_reads() {
    for backend in BACKENDS {
        let mut d = Daemon::start(backend, &[]);
        let c = TcpStream::connect_timeout(&d.server.addr, PATIENCE).expect("connect");
        flood_without_reading(&c, &b"GET k\n".repeat(8192));
        let took = d.terminate();
        assert!(
            took > Duration::from_secs(1),
            "{backend}: {took:?}: no grace period?"
        );
        drop(c);
    }
}

#[test]
fn sigterm_delivers_the_pending_slow_reply_then_exits_0() {
    for backend in BACKENDS {
        let scratch = Scratch::new("term");
        let sock = scratch.path("kv.sock");
        let mut d = Daemon::start(backend, &["--unix", sock.to_str().unwrap()]);
        let mut idle = d.connect_unix();
        assert_eq!(idle.ask("SET k v"), "OK");
        let mut c = d.connect();
        c.send("SLOW 1500 k\nGET k\n");
        sleep(Duration::from_millis(200)); // the commands are in
        let start = Instant::now();
        d.signal(libc::SIGTERM);
        // A connection with nothing owed is closed at once.
        idle.expect_closed();
        assert!(start.elapsed() < Duration::from_millis(1200), "{backend}");
        // The one with replies owed gets them, then the close.
        assert_eq!(c.line(), "VALUE v", "{backend}");
        assert_eq!(c.line(), "VALUE v", "{backend}");
        c.expect_closed();
        // No longer accepting.
        assert!(
            TcpStream::connect_timeout(&d.server.addr, PATIENCE).is_err(),
            "{backend}: still accepting after SIGTERM"
        );
        let status = d
            .server
            .proc
            .wait_timeout(PATIENCE)
            .expect("kv_daemon exits after SIGTERM");
        let took = start.elapsed();
        assert_eq!(status.code(), Some(0), "{backend}: log:\n{}", d.log.text());
        assert!(
            took < Duration::from_secs(5),
            "{backend}: exit took {took:?}"
        );
        assert!(!sock.exists(), "{backend}: the socket path is left at exit");
        assert!(d.log.text().contains("shutting down"), "{}", d.log.text());
    }
}

#[test]
fn bad_arguments_and_runtime_failures() {
    assert_bad_args(NAME, &["--bogus"], "--bogus");
    assert_bad_args(NAME, &["--tcp", "nope"], "nope");
    assert_bad_args(NAME, &["--idle-timeout", "0"], "--idle-timeout");
    assert_bad_args(NAME, &["--udp"], "--udp");
    assert_bad_args(NAME, &["--poll", "--select"], "--select");
    let (_held, addr) = busy_port();
    assert_runtime_failure(NAME, &["--tcp", &addr.to_string()], &addr.to_string());
    let scratch = Scratch::new("notsock");
    let file = scratch.write("plain", "not a socket");
    let file = file.to_str().unwrap();
    assert_runtime_failure(
        NAME,
        &["--tcp", "127.0.0.1:0", "--unix", file],
        "not a socket",
    );
    assert!(Path::new(file).exists(), "a plain file must not be removed");
}
