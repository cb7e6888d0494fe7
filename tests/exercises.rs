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
        assert_eq!(bob.line(), "* alice has left", "{backend}");
        assert_eq!(carol.line(), "* alice has left", "{backend}");

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
        assert_eq!(bob.line(), "* carol has left", "{backend}");
        assert_eq!(alice2.line(), "* carol has left", "{backend}");
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
