//! The chat_server example as a process, on both backends: EXAMPLES.md's
//! contract clause by clause (the dialogue, names, broadcast, `\n` and
//! `\r\n`, disconnects, over-long lines, arguments, signals, address in
//! use).

mod common;

use common::{assert_bad_args, run, Server, BACKENDS, PATIENCE};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

const NAME: &str = "chat_server";

fn start(backend: &str) -> Server {
    Server::start(NAME, &["--bind", "127.0.0.1:0", backend])
}

/// A chat client: a line reader and a writer on one connection.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, PATIENCE)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_write_timeout(Some(PATIENCE)).unwrap();
        let writer = s.try_clone().unwrap();
        let mut c = Client {
            reader: BufReader::new(s),
            writer,
        };
        c.expect("What's your name?");
        c
    }

    /// Connects and takes `name`, which must be free.
    fn join(addr: SocketAddr, name: &str) -> Client {
        let mut c = Client::connect(addr);
        c.send(&format!("{name}\r\n"));
        c.expect(&format!("Welcome, {name}!"));
        c
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
    }

    /// The next line from the server, which must end in "\r\n".
    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap();
        assert!(n > 0, "the server closed the connection");
        assert!(
            line.ends_with("\r\n"),
            "server line {line:?} does not end in \\r\\n"
        );
        line.truncate(line.len() - 2);
        line
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    /// Whether the server closed this connection (EOF or reset, within
    /// PATIENCE), after any lines still in flight.
    fn is_closed_by_server(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

#[test]
fn dialogue_with_several_clients() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut alice = Client::join(server.addr, "alice");
        let mut bob = Client::join(server.addr, "bob");
        // Someone still choosing a name hears nothing of the room.
        let mut newcomer = Client::connect(server.addr);

        // A name in use: the question stands.
        newcomer.send("alice\n");
        newcomer.expect("Name taken, please choose another.");
        newcomer.send("carol\n");
        newcomer.expect("Welcome, carol!");
        let mut carol = newcomer;

        // \n and \r\n from clients both end a line; the sender does not
        // get its own line back.
        alice.send("hello everyone\n");
        bob.expect("<alice> hello everyone");
        carol.expect("<alice> hello everyone");
        bob.send("hi alice\r\n");
        alice.expect("<bob> hi alice");
        carol.expect("<bob> hi alice");
        // Lines in pieces, and two in one write.
        carol.send("in ");
        carol.send("pieces\r");
        carol.send("\nsecond\n");
        for c in [&mut alice, &mut bob] {
            c.expect("<carol> in pieces");
            c.expect("<carol> second");
        }
        // alice's own line never came back: her next line is bob's.
        bob.send("last\n");
        alice.expect("<bob> last");
        carol.expect("<bob> last");
    }
}

#[test]
fn a_name_is_free_again_after_its_user_disconnects() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut bob = Client::join(server.addr, "bob");
        let alice = Client::join(server.addr, "alice");
        drop(alice);
        // Retry until the server has seen the disconnect (it takes one
        // loop iteration; the client cannot know when).
        let mut again = Client::connect(server.addr);
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            again.send("alice\n");
            let answer = again.line();
            if answer == "Welcome, alice!" {
                break;
            }
            assert_eq!(answer, "Name taken, please choose another.");
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: alice never freed"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        again.send("back\n");
        bob.expect("<alice> back");
    }
}

#[test]
fn an_over_long_line_closes_only_that_client() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut alice = Client::join(server.addr, "alice");
        let mut bob = Client::join(server.addr, "bob");
        let mut flooder = Client::join(server.addr, "flooder");
        // Over 64 KiB with no newline. The server may close while we are
        // still writing: ignore write errors.
        let flood = vec![b'x'; 64 * 1024 + 100];
        let _ = flooder.writer.write_all(&flood);
        assert!(
            flooder.is_closed_by_server(),
            "{backend}: flooder still connected"
        );
        // The others go on, and the flooder's name is free again.
        alice.send("still here\n");
        bob.expect("<alice> still here");
        let mut ok = Client::connect(server.addr);
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            ok.send("flooder\n");
            if ok.line() == "Welcome, flooder!" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend}: name never freed"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A long line that does end in a newline within the limit is fine.
        let long = "y".repeat(60 * 1024);
        bob.send(&format!("{long}\n"));
        alice.expect(&format!("<bob> {long}"));
    }
}

/// A user who never reads must not make the server queue output for them
/// without bound: past 1 MiB waiting they are dropped, and everyone else
/// gets every line.
#[test]
fn a_user_who_never_reads_is_dropped_and_the_others_are_served() {
    const LINES: usize = 400; // 24 MiB: far more than the kernel buffers hold
    for backend in BACKENDS {
        let server = start(backend);
        let mut alice = Client::join(server.addr, "alice");
        let mut bob = Client::join(server.addr, "bob");
        let mut slow = Client::join(server.addr, "slow");
        let line = "z".repeat(60 * 1024);
        let want = format!("<alice> {line}");
        let reader = std::thread::spawn(move || {
            for i in 0..LINES {
                assert_eq!(bob.line(), want, "line {i}");
            }
            bob
        });
        for _ in 0..LINES {
            alice.send(&format!("{line}\n"));
        }
        let mut bob = reader.join().expect("bob got every line");
        assert!(
            slow.is_closed_by_server(),
            "{backend}: the user who never reads is still connected"
        );
        alice.send("still here\n");
        bob.expect("<alice> still here");
    }
}

/// One legal line that grows past the backlog limit once its control
/// bytes are shown (60,000 bytes of `\x01`, each sent as `\x01`: 240,010
/// bytes) reaches every reader whole, and drops nobody: a user is slow if
/// the backlog was over the limit *before* a line came.
#[test]
fn a_long_line_of_control_bytes_reaches_every_reader() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut alice = Client::join(server.addr, "alice");
        let mut bob = Client::join(server.addr, "bob");
        let raw = "\x01".repeat(60_000);
        alice.send(&format!("{raw}\n"));
        let got = bob.line();
        assert_eq!(got.len(), "<alice> ".len() + 4 * 60_000, "{backend}");
        assert_eq!(
            got,
            format!("<alice> {}", "\\x01".repeat(60_000)),
            "{backend}"
        );
        alice.send("still here\n");
        bob.expect("<alice> still here");
    }
}

#[test]
fn bad_arguments_exit_2() {
    assert_bad_args(NAME, &["--bogus"], "--bogus");
    assert_bad_args(NAME, &["--bind", "not-an-address"], "not-an-address");
    assert_bad_args(NAME, &["--poll", "--select"], "--");
}

#[test]
fn sigterm_and_sigint_end_the_server_promptly() {
    for backend in BACKENDS {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let mut server = start(backend);
            let _alice = Client::join(server.addr, "alice");
            let err = server.proc.collect_stderr();
            server.proc.signal(signal);
            let status = server
                .proc
                .wait_timeout(PATIENCE)
                .unwrap_or_else(|| panic!("{backend}: no exit after signal {signal}"));
            let err = err.recv_timeout(PATIENCE).unwrap_or_default();
            assert!(
                matches!(status.code(), Some(0) | Some(130) | Some(143)),
                "{backend}, signal {signal}: {status}; stderr:\n{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn address_in_use_is_a_one_line_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    for backend in BACKENDS {
        let (status, _out, err) = run(NAME, &["--bind", &addr, backend], b"");
        assert!(
            !status.success() && status.code().is_some(),
            "{status}; {err}"
        );
        assert_ne!(status.code(), Some(2), "not a usage error: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "stderr:\n{err}");
        assert!(err.contains(&addr), "stderr {err:?} lacks {addr}");
    }
    drop(busy);
}

#[test]
fn logs_connections_to_stderr_not_stdout() {
    let mut server = start("--select");
    let alice = Client::join(server.addr, "alice");
    drop(alice);
    let err = server.proc.collect_stderr();
    server.proc.signal(libc::SIGTERM);
    assert!(server.proc.wait_timeout(PATIENCE).is_some());
    let err = err.recv_timeout(PATIENCE).unwrap();
    assert!(err.contains("Incoming connection from 127.0.0.1:"), "{err}");
    assert!(err.contains("alice joined"), "{err}");
    // Nothing on stdout after the `listening on` line.
    assert!(server.stdout.try_recv().is_err());
}

/// The most the server may ever hold resident under the floods below.
const FLOOD_BOUND_KIB: u64 = 64 * 1024;

/// [`common::small_window_connection`] whose writes give up after 500 ms:
/// a flood stops when the server stops reading.
fn small_window_connection(addr: SocketAddr) -> TcpStream {
    let s = common::small_window_connection(addr);
    s.set_write_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    s
}

/// The server still greets a newcomer.
fn assert_still_serving(server: &Server, backend: &str) {
    let mut c = Client::connect(server.addr);
    c.send("latecomer\n");
    assert_eq!(c.line(), "Welcome, latecomer!", "{backend}");
}

/// Issue 10, item 2, first flood: an unnamed client sends empty lines and
/// never reads. Each empty line asks "What's your name?" again; asynchat
/// queued every answer (1.27 GiB for 20 MiB of input). Here the client's
/// own queue reaches its limit and the client stops being read.
#[test]
fn an_unnamed_client_flooding_empty_lines_cannot_grow_memory() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut flood = small_window_connection(server.addr);
        let chunk = vec![b'\n'; 64 * 1024];
        let mut sent = 0;
        // 8 MiB of empty lines, or until the server stops reading (the
        // write then times out).
        while sent < 8 << 20 && flood.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let peak = common::peak_rss_kib(server.proc.pid());
        assert!(
            peak < FLOOD_BOUND_KIB,
            "{backend}: {peak} KiB resident after {sent} bytes of empty lines"
        );
        assert!(
            sent < 8 << 20,
            "{backend}: the server read all {sent} bytes without being read"
        );
        assert_still_serving(&server, backend);
    }
}

/// Issue 10, item 2, second flood: 300 named users who never read send
/// short messages. Each broadcast line is queued for 299 users; asynchat
/// paid an allocation per line (2.42 GiB peak). Here queues share buffers,
/// count bytes of heap, and a user whose queue passes its limit is
/// dropped.
#[test]
fn three_hundred_users_who_never_read_cannot_grow_memory() {
    const USERS: usize = 300;
    const MESSAGES: usize = 60;
    for backend in BACKENDS {
        let server = start(backend);
        let mut users: Vec<Option<TcpStream>> = (0..USERS)
            .map(|_| Some(small_window_connection(server.addr)))
            .collect();
        for (i, user) in users.iter_mut().enumerate() {
            if let Some(s) = user {
                let _ = s.write_all(format!("user{i:03}\n").as_bytes());
            }
        }
        for _ in 0..MESSAGES {
            for user in users.iter_mut() {
                if let Some(s) = user {
                    if s.write_all(b"xxxxxxxx\n").is_err() {
                        *user = None; // dropped by the server
                    }
                }
            }
        }
        // Served after every message before it: the floods are handled.
        assert_still_serving(&server, backend);
        let peak = common::peak_rss_kib(server.proc.pid());
        assert!(
            peak < FLOOD_BOUND_KIB,
            "{backend}: {peak} KiB resident with {USERS} users who never read"
        );
        drop(users);
    }
}

/// Issue 10, item 7: a `\r` (or an escape sequence) in a line or a name is
/// sent as `\xNN`, so nobody can forge another user's prefix on a terminal.
#[test]
fn control_bytes_in_lines_and_names_are_escaped() {
    for backend in BACKENDS {
        let server = start(backend);
        let mut alice = Client::join(server.addr, "alice");
        let mut mallory = Client::connect(server.addr);
        mallory.send("m\x1b[2Jallory\n");
        assert_eq!(mallory.line(), "Welcome, m\\x1b[2Jallory!", "{backend}");
        mallory.send("hi\r<bob> forged\r\n");
        assert_eq!(
            alice.line(),
            "<m\\x1b[2Jallory> hi\\x0d<bob> forged",
            "{backend}"
        );
    }
}

/// `--idle-timeout`: a silent client is told and closed after the timeout;
/// a client that keeps talking is not (each line pushes the deadline back).
#[test]
fn an_idle_client_is_closed_and_a_talking_one_is_not() {
    for backend in BACKENDS {
        let server = Server::start(
            NAME,
            &["--bind", "127.0.0.1:0", "--idle-timeout", "1", backend],
        );
        let mut silent = Client::connect(server.addr);
        let mut talking = Client::join(server.addr, "ann");
        let start = std::time::Instant::now();
        for _ in 0..7 {
            talking.send("\r\n"); // an empty line is input too
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        silent.expect("Closing: idle for too long.");
        let mut rest = Vec::new();
        silent.reader.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{backend}: then a clean close");
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(900),
            "{backend}: closed early"
        );
        let mut bob = Client::join(server.addr, "bob");
        bob.send("hello\r\n");
        talking.expect("<bob> hello");
    }
}
