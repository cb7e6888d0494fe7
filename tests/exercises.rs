//! The checkers of the guide's exercises (`guide::exercises`). Each runs
//! the reference solution (an example binary) as a process, on every
//! backend; set the exercise's environment variable to check your own
//! binary instead:
//!
//! ```text
//! EXERCISE_CHAT_LEAVES=target/debug/examples/my_chat cargo test --test exercises chat_leaves
//! EXERCISE_BYTE_COUNT=target/debug/examples/my_echo cargo test --test exercises byte_count
//! ```

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

/// A chat user who has chosen `name`.
fn join(server: &Server, name: &str) -> LineClient {
    let mut c = LineClient::connect(server.addr);
    assert_eq!(c.line(), "What's your name?");
    c.send_line(name);
    assert_eq!(c.line(), format!("Welcome, {name}!"));
    c
}

/// Exercise 1: make the chat server announce leaves.
#[test]
fn chat_leaves() {
    let bin = exercise_binary("exercise_chat_leaves", "EXERCISE_CHAT_LEAVES");
    for backend in BACKENDS {
        let server = Server::start_binary(&bin, &["--bind", "127.0.0.1:0", backend]);
        let alice = join(&server, "alice");
        let mut bob = join(&server, "bob");
        let mut carol = join(&server, "carol");
        // Chat still works.
        bob.send_line("hi all");
        assert_eq!(carol.line(), "<bob> hi all", "{backend}");

        // alice hangs up: both others hear it, once.
        drop(alice);
        bob.expect_line(
            "* alice has left",
            &format!("{backend}: bob, after alice hung up"),
        );
        carol.expect_line(
            "* alice has left",
            &format!("{backend}: carol, after alice hung up"),
        );

        // dave is disconnected for an over-long line (no newline within
        // 64 KiB): that is a leave too.
        let mut dave = join(&server, "dave");
        let _ = dave.send_raw(&vec![b'x'; 70 * 1024]);
        bob.expect_line(
            "* dave has left",
            &format!("{backend}: bob, after dave's over-long line"),
        );
        carol.expect_line(
            "* dave has left",
            &format!("{backend}: carol, after dave's over-long line"),
        );

        // Someone who never chose a name leaves without a word.
        let mut anonymous = LineClient::connect(server.addr);
        assert_eq!(anonymous.line(), "What's your name?");
        drop(anonymous);
        bob.send_line("still here");
        assert_eq!(
            carol.line(),
            "<bob> still here",
            "{backend}: an unnamed client's leave was announced"
        );

        // The name is free again, and the leaver is not told of its own leave.
        let mut alice2 = join(&server, "alice");
        drop(carol);
        bob.expect_line(
            "* carol has left",
            &format!("{backend}: bob, after carol left"),
        );
        alice2.expect_line(
            "* carol has left",
            &format!("{backend}: alice, after carol left"),
        );
        bob.assert_silent(Duration::from_millis(100));
    }
}

/// The `IP:PORT closed: N bytes in, M bytes out` lines a server prints,
/// `count` of them, in the order they come.
fn closing_lines(server: &Server, count: usize) -> Vec<String> {
    (0..count).map(|_| server.next_line()).collect()
}

/// Exercise 2: count bytes per connection.
#[test]
fn byte_count() {
    let bin = exercise_binary("exercise_byte_count", "EXERCISE_BYTE_COUNT");
    for backend in BACKENDS {
        let server = Server::start_binary(&bin, &["--bind", "127.0.0.1:0", backend]);

        // Two clients at once: a big echo and a small one.
        let big = connect(server.addr);
        let mut small = connect(server.addr);
        let data = random_bytes(300_000, 7);
        small.write_all(b"hello").unwrap();
        let echoed = send_and_receive(&big, data.clone(), data.len());
        assert_eq!(echoed, data, "{backend}: the echo is wrong");
        let mut five = [0u8; 5];
        small.read_exact(&mut five).unwrap();
        assert_eq!(&five, b"hello");
        let (big_addr, small_addr) = (big.local_addr().unwrap(), small.local_addr().unwrap());
        drop(big);
        drop(small);
        let seen: BTreeSet<String> = closing_lines(&server, 2).into_iter().collect();
        let expected: BTreeSet<String> = [
            format!("{big_addr} closed: 300000 bytes in, 300000 bytes out"),
            format!("{small_addr} closed: 5 bytes in, 5 bytes out"),
        ]
        .into_iter()
        .collect();
        assert_eq!(seen, expected, "{backend}");

        // A client that sends and hangs up without reading: the server
        // still read 3 bytes and handed 3 to the socket.
        let mut rude = connect(server.addr);
        let rude_addr = rude.local_addr().unwrap();
        rude.write_all(b"abc").unwrap();
        drop(rude);
        assert_eq!(
            server.next_line(),
            format!("{rude_addr} closed: 3 bytes in, 3 bytes out"),
            "{backend}"
        );
        // A client that sends, shuts down its write side and only then
        // reads (`nc -N`): its whole echo still reaches it, queue included,
        // and counts as out. Its receive window is small, so the echo waits
        // in the server's queue (less than its 256 KiB limit: the server
        // reads all of it, then the end of file).
        const HALF: usize = 200_000;
        let mut half = small_window_connection(server.addr);
        let half_addr = half.local_addr().unwrap();
        let data = random_bytes(HALF, 8);
        half.write_all(&data).unwrap();
        half.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // the server sees the end
        let mut echoed = Vec::new();
        half.read_to_end(&mut echoed).unwrap();
        assert_eq!(echoed.len(), HALF, "{backend}: the echo's tail was lost");
        assert!(echoed == data, "{backend}: the echo differs");
        assert_eq!(
            server.next_line(),
            format!("{half_addr} closed: {HALF} bytes in, {HALF} bytes out"),
            "{backend}"
        );
        // A client that floods without reading, then resets: what still
        // waited in the server's queue never left, so it is not "out".
        let flooder = small_window_connection(server.addr);
        let flooder_addr = flooder.local_addr().unwrap();
        flood_without_reading(&flooder, &[b'f'; 64 * 1024]);
        reset(flooder);
        let line = server.next_line();
        let counts = line
            .strip_prefix(&format!("{flooder_addr} closed: "))
            .and_then(|rest| rest.strip_suffix(" bytes out"))
            .and_then(|rest| rest.split_once(" bytes in, "))
            .and_then(|(n, m)| Some((n.parse::<u64>().ok()?, m.parse::<u64>().ok()?)));
        let Some((bytes_in, bytes_out)) = counts else {
            panic!("{backend}: not a closing line for {flooder_addr}: {line:?}");
        };
        assert!(
            bytes_out < bytes_in,
            "{backend}: {line:?}: bytes still queued at the reset were counted as out"
        );
        // A connection that sends nothing counts zeros.
        let silent = connect(server.addr);
        let silent_addr = silent.local_addr().unwrap();
        drop(silent);
        assert_eq!(
            server.next_line(),
            format!("{silent_addr} closed: 0 bytes in, 0 bytes out"),
            "{backend}"
        );
    }
}

/// Exercise 3: say goodbye to idle clients.
#[test]
fn idle_timeout() {
    use std::time::Instant;
    const IDLE: Duration = Duration::from_millis(400);
    let bin = exercise_binary("exercise_idle_timeout", "EXERCISE_IDLE_TIMEOUT");
    for backend in BACKENDS {
        let server = Server::start_binary(
            &bin,
            &["--bind", "127.0.0.1:0", "--idle-timeout", "0.4", backend],
        );
        let mut talker = LineClient::connect(server.addr);
        let silent_since = Instant::now();
        let mut silent = LineClient::connect(server.addr);
        let silent_addr = silent.stream.local_addr().unwrap();

        // The talker sends every 100 ms for twice the idle timeout: each
        // line pushes its deadline back, so it is echoed and stays open.
        let talk_until = Instant::now() + 2 * IDLE;
        let mut n = 0;
        while Instant::now() < talk_until {
            talker.send_line(&format!("ping {n}"));
            assert_eq!(talker.line(), format!("ping {n}"), "{backend}");
            n += 1;
            std::thread::sleep(Duration::from_millis(100));
        }

        // The silent one was told, and closed, after the idle timeout (not
        // before) and well within a second of it.
        assert_eq!(silent.line(), "idle timeout, bye", "{backend}");
        let closed_after = silent_since.elapsed();
        let mut rest = String::new();
        let end = silent.stream.read_to_string(&mut rest);
        assert!(
            matches!(end, Ok(0)),
            "{backend}: no end of stream after the goodbye: {end:?}"
        );
        assert!(
            closed_after >= IDLE - Duration::from_millis(50),
            "{backend}: closed after {closed_after:?}, before the idle timeout"
        );
        assert!(
            closed_after < IDLE + Duration::from_millis(900),
            "{backend}: closed only after {closed_after:?}"
        );
        assert_eq!(
            server.next_line(),
            format!("{silent_addr} idle, closed"),
            "{backend}"
        );

        // Once the talker stops, it is closed too, one idle timeout later.
        let stopped = Instant::now();
        assert_eq!(talker.line(), "idle timeout, bye", "{backend}");
        let waited = stopped.elapsed();
        assert!(
            waited >= IDLE - Duration::from_millis(150),
            "{backend}: the talker was closed {waited:?} after its last line"
        );
        assert_eq!(
            server.next_line(),
            format!("{} idle, closed", talker.stream.local_addr().unwrap()),
            "{backend}"
        );
    }
}
