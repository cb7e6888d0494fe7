//! The loop's trace (log level trace, target `selectloop`): for a known
//! sequence — connect, write, read, close — the lines say what was asked of
//! the kernel, what came back, and which handler ran, on both backends.

// The per-thread log capture (each test reads only its own loop's lines)
// and the timeouts are shared (tests/common).
mod common;

use common::{logs, PATIENCE};
use selectloop::{Backend, Context, Dispatcher, Domain, Handler, Loop, Map, Stop, Type};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::RawFd;
use std::thread;
use std::time::Duration;

/// A client that sends "ping" once connected and reads until the peer
/// closes: asyncore's http_client in miniature.
struct Client {
    out: Vec<u8>,
}

impl Handler for Client {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        !self.out.is_empty()
    }
    fn handle_connect(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let n = ch.send(&self.out)?;
        self.out.drain(..n);
        Ok(())
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.recv(&mut [0u8; 64])?;
        Ok(())
    }
    fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        Ok(())
    }
}

/// Runs the client against a blocking peer thread that reads "ping",
/// answers "pong" and closes; returns the client's fd and the trace lines.
fn run_sequence(use_poll: bool) -> (RawFd, Vec<String>) {
    run_sequence_on(if use_poll {
        Backend::Poll
    } else {
        Backend::Select
    })
}

/// The same on any backend.
fn run_sequence_on(backend: Backend) -> (RawFd, Vec<String>) {
    logs::install(log::LevelFilter::Trace);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut ping = [0u8; 4];
        s.read_exact(&mut ping).unwrap();
        s.write_all(b"pong").unwrap();
    });
    let mut ch = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    ch.connect(addr).unwrap();
    let fd = ch.fileno().unwrap();
    let mut map = Map::new();
    map.add(
        ch,
        Client {
            out: b"ping".to_vec(),
        },
    );
    let stop = Loop::new()
        .timeout(Duration::from_millis(100))
        .backend(backend)
        .count(200)
        .run(&mut map)
        .unwrap();
    peer.join().unwrap();
    assert_eq!(stop, Stop::Empty, "the client closed and left the map");
    (fd, logs::my_lines("selectloop"))
}

/// An iteration line without its `[+0.001234s] iteration N: ` stamp (and
/// a result line without its `[+...s] ` stamp), after checking the stamp
/// is there: relative seconds with microseconds.
fn unstamped(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("[+")?;
    let (secs, rest) = rest.split_once("s] ")?;
    let (whole, micros) = secs.split_once('.')?;
    assert!(
        whole.chars().all(|c| c.is_ascii_digit())
            && micros.len() == 6
            && micros.chars().all(|c| c.is_ascii_digit()),
        "bad stamp in {line:?}"
    );
    Some(match rest.strip_prefix("iteration ") {
        Some(r) => r.split_once(": ").map_or(r, |(_, call)| call),
        None => rest,
    })
}

/// The trace with the stamps taken off the lines that have one.
fn plain(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| unstamped(l).unwrap_or(l).to_string())
        .collect()
}

/// Asserts that `expected` appear in `lines` in this order (other lines may
/// come between them).
fn assert_in_order(lines: &[String], expected: &[String]) {
    let mut it = lines.iter();
    for want in expected {
        assert!(
            it.any(|l| l == want),
            "trace line {want:?} missing or out of order in:\n{}",
            lines.join("\n")
        );
    }
}

/// What both backends print about the channel itself: a label when it
/// joins, a line when it leaves, stamps on every iteration.
fn assert_lifecycle(fd: RawFd, lines: &[String], call: &str) {
    let opened = lines
        .iter()
        .position(|l| l.starts_with(&format!("fd {fd}: opened: connection to 127.0.0.1:")))
        .unwrap_or_else(|| panic!("no label for fd {fd}:\n{}", lines.join("\n")));
    let closed = lines
        .iter()
        .position(|l| l == &format!("fd {fd}: closed, removed from the map"))
        .unwrap_or_else(|| panic!("no close line for fd {fd}:\n{}", lines.join("\n")));
    assert!(opened < closed);
    let iterations: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(" iteration ") && l.contains(call))
        .collect();
    assert!(!iterations.is_empty(), "{}", lines.join("\n"));
    for l in iterations {
        assert!(
            unstamped(l).is_some(),
            "iteration line without a stamp: {l}"
        );
    }
}

#[test]
fn select_trace_shows_sets_and_handlers() {
    let (fd, lines) = run_sequence(false);
    assert_lifecycle(fd, &lines, ": select(");
    let lines = plain(&lines);
    // While connecting, the fd is in the write set (and the except set).
    assert!(
        lines.iter().any(|l| l.starts_with("select(readfds=")
            && l.contains(&format!("writefds={{{fd}}}"))
            && l.contains(&format!("exceptfds={{{fd}}}"))),
        "no select call with fd {fd} in the write set:\n{}",
        lines.join("\n")
    );
    assert!(lines.iter().any(|l| l
        .starts_with("select -> 1 ready (an fd counts once per set it is in):")
        && l.contains(&format!("writefds={{{fd}}}"))));
    assert_in_order(
        &lines,
        &[
            format!("fd {fd}: writable -> handle_connect"),
            format!("fd {fd}: writable -> handle_write"),
            format!("fd {fd}: readable -> handle_read"),
            format!("fd {fd}: peer closed (recv returned 0) -> handle_close"),
            format!("fd {fd}: closed, removed from the map"),
        ],
    );
}

#[test]
fn poll_trace_shows_pollfds_and_handlers() {
    let (fd, lines) = run_sequence(true);
    assert_lifecycle(fd, &lines, ": poll(");
    let lines = plain(&lines);
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("  pollfd fd={fd} events=POLLIN|POLLPRI|POLLOUT")),
        "no pollfd asking for POLLOUT while connecting:\n{}",
        lines.join("\n")
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("poll(nfds=1, timeout=0.100s)")));
    assert!(lines
        .iter()
        .any(|l| l == &format!("  pollfd fd={fd} revents=POLLOUT")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with(&format!("  pollfd fd={fd} revents=POLLIN"))));
    assert_in_order(
        &lines,
        &[
            format!("fd {fd}: POLLOUT -> handle_connect"),
            format!("fd {fd}: POLLOUT -> handle_write"),
            format!("fd {fd}: POLLIN -> handle_read"),
            format!("fd {fd}: peer closed (recv returned 0) -> handle_close"),
            format!("fd {fd}: closed, removed from the map"),
        ],
    );
}

/// A reset is traced as the error it is, not as a clean end of file.
#[test]
fn a_reset_is_traced_as_a_reset_not_as_recv_returned_0() {
    for backend in Backend::ALL.into_iter().filter(|b| b.is_available()) {
        logs::install(log::LevelFilter::Trace);
        // This backend's lines only: the capture keeps the thread's whole log.
        let before = logs::my_lines("selectloop").len();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (&client).write_all(b"x").unwrap();
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client); // a reset
        thread::sleep(Duration::from_millis(50));
        let mut map = Map::new();
        map.add(
            Dispatcher::from_socket(server).unwrap(),
            Client { out: Vec::new() },
        );
        Loop::new()
            .backend(backend)
            .timeout(Duration::from_millis(100))
            .count(5)
            .run(&mut map)
            .unwrap();
        let lines = plain(&logs::my_lines("selectloop")[before..]);
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("Connection reset by peer (os error 104) -> handle_close")),
            "{backend}: no reset in the trace:\n{}",
            lines.join("\n")
        );
        assert!(
            !lines.iter().any(|l| l.contains("recv returned 0")),
            "{backend}: a reset traced as an end of file:\n{}",
            lines.join("\n")
        );
    }
}

/// Reads a file to its end, then closes.
struct ReadToEnd;

impl Handler for ReadToEnd {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        if ch.recv(&mut [0u8; 4096])? == 0 {
            ch.close();
        }
        Ok(())
    }
}

/// epoll refuses a regular file; the trace says so, and says that the
/// backend reports it ready after each wait, rather than showing a
/// readiness that no `epoll_wait` returned.
#[test]
fn epoll_trace_shows_a_regular_file_kept_aside() {
    if !Backend::Epoll.is_available() {
        return;
    }
    logs::install(log::LevelFilter::Trace);
    let path = common::temp_path("trace-regular-file");
    std::fs::write(&path, b"some bytes").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut map = Map::new();
    map.add(Dispatcher::file_dispatcher(&file).unwrap(), ReadToEnd);
    drop(file);
    Loop::new()
        .backend(Backend::Epoll)
        .timeout(Duration::from_millis(100))
        .count(10)
        .run(&mut map)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let lines = plain(&logs::my_lines("selectloop"));
    let text = lines.join("\n");
    assert!(
        text.contains("-> Operation not permitted (os error 1): a regular file, always ready"),
        "{text}"
    );
    assert!(
        text.contains("epoll_wait -> 0 ready (timeout); and 1 always ready"),
        "{text}"
    );
    assert!(map.is_empty(), "read to the end and closed");
}

#[test]
fn epoll_trace_shows_ctl_wait_and_handlers() {
    let (fd, lines) = run_sequence_on(Backend::Epoll);
    assert_lifecycle(fd, &lines, ": epoll_wait(");
    let lines = plain(&lines);
    // Connecting: the fd is added for reading and writing, and changed to
    // read-only once the request is written (epoll_ctl only on a change).
    assert_in_order(
        &lines,
        &[
            format!("epoll_ctl(EPOLL_CTL_ADD, fd={fd}, events=EPOLLIN|EPOLLPRI|EPOLLOUT)"),
            format!("  fd={fd} events=EPOLLOUT"),
            format!("fd {fd}: EPOLLOUT -> handle_connect"),
            format!("fd {fd}: EPOLLOUT -> handle_write"),
            format!("epoll_ctl(EPOLL_CTL_MOD, fd={fd}, events=EPOLLIN|EPOLLPRI)"),
            format!("fd {fd}: EPOLLIN -> handle_read"),
            format!("fd {fd}: peer closed (recv returned 0) -> handle_close"),
            format!("fd {fd}: closed, removed from the map"),
        ],
    );
    let adds = lines
        .iter()
        .filter(|l| l.starts_with(&format!("epoll_ctl(EPOLL_CTL_ADD, fd={fd},")))
        .count();
    assert_eq!(adds, 1, "registered once:\n{}", lines.join("\n"));
}

/// Passes its peer's end of file on (as a forwarder does), then reads until
/// its own end.
struct PassesEofOn;

impl Handler for PassesEofOn {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        if ch.recv(&mut [0u8; 64])? > 0 {
            ch.shutdown(std::net::Shutdown::Write)?;
        }
        Ok(())
    }
    fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        Ok(())
    }
}

/// A half-close passed on, and the close that follows, each have a line,
/// on every backend: "how does the loop know a channel closed" is answered
/// by the trace.
#[test]
fn half_close_and_close_lines_on_every_backend() {
    for backend in Backend::ALL {
        logs::install(log::LevelFilter::Trace);
        let before = logs::my_lines("selectloop").len();
        let (ours, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut map = Map::new();
        let ch = Dispatcher::from_socket(ours).unwrap();
        let fd = ch.fileno().unwrap();
        map.add(ch, PassesEofOn);
        peer.write_all(b"last words").unwrap();
        let reader = thread::spawn(move || {
            let mut rest = Vec::new();
            peer.read_to_end(&mut rest).unwrap(); // our EOF arrives
            drop(peer); // and the peer goes
        });
        let stop = Loop::new()
            .backend(backend)
            .timeout(PATIENCE)
            .count(100)
            .run(&mut map)
            .unwrap();
        reader.join().unwrap();
        assert_eq!(stop, Stop::Empty, "{backend}");
        let lines = logs::my_lines("selectloop")[before..].to_vec();
        assert_in_order(
            &lines,
            &[
                format!("fd {fd}: half-close passed on: shutdown(SHUT_WR)"),
                format!("fd {fd}: peer closed (recv returned 0) -> handle_close"),
                format!("fd {fd}: closed, removed from the map"),
            ],
        );
    }
}
