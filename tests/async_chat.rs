//! CPython's `test_asynchat` behaviours, ported (not copied) to
//! [`AsyncChat`], on both backends (select and poll), plus the limits and
//! state rules this crate adds, and a property test: however the input is
//! split into reads, the hooks see the same messages.
//!
//! The Python suite's `echo_server` thread is here too: it reads until
//! `QUIT\n`, then sends everything back in pieces of 1, 2 or 3 bytes, so
//! terminators arrive split across reads.

// The timeouts, the backend list and the loops built from them are shared
// (tests/common).
mod common;

use common::{bounded, lp, ITERATION_PATIENCE, LOOP_BACKENDS, PATIENCE};
use proptest::prelude::*;
use selectloop::{
    AsyncChat, AsyncChatHandler, Backend, Context, Dispatcher, Domain, Handle, Handler,
    IncomingTooLong, Loop, Map, SimpleProducer, Terminator, Type,
};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const SERVER_QUIT: &[u8] = b"QUIT\n";

// ---------------------------------------------------------------------------
// The echo server thread of test_asynchat.

struct EchoServer {
    addr: SocketAddr,
    /// What the server received (QUIT removed), when it is done.
    received: mpsc::Receiver<Vec<u8>>,
    /// Send () to let a server made with `wait_before_resend` echo.
    resend: Option<mpsc::Sender<()>>,
}

fn echo_server(chunk: usize, wait_before_resend: bool) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let (tx, received) = mpsc::channel();
    let (resend_tx, resend_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let deadline = Instant::now() + PATIENCE;
        let mut conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(2)),
                Err(e) => panic!("echo server: no client: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        conn.set_write_timeout(Some(PATIENCE)).unwrap();
        conn.set_nodelay(true).unwrap();
        let mut buffer = Vec::new();
        let mut byte = [0u8; 1];
        while !buffer.ends_with(SERVER_QUIT) {
            match conn.read(&mut byte) {
                Ok(0) | Err(_) => break,
                Ok(_) => buffer.push(byte[0]),
            }
        }
        if buffer.ends_with(SERVER_QUIT) {
            buffer.truncate(buffer.len() - SERVER_QUIT.len());
        }
        if wait_before_resend {
            let _ = resend_rx.recv_timeout(PATIENCE);
        }
        // Send it all back in small pieces, so the client's reads split
        // lines and terminators (the client may be gone: ignore errors).
        for piece in buffer.chunks(chunk) {
            if conn.write_all(piece).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        drop(conn);
        let _ = tx.send(buffer);
    });
    EchoServer {
        addr,
        received,
        resend: wait_before_resend.then_some(resend_tx),
    }
}

impl EchoServer {
    fn received(&self) -> Vec<u8> {
        self.received
            .recv_timeout(PATIENCE)
            .expect("echo server finished")
    }
}

// ---------------------------------------------------------------------------
// The echo client of test_asynchat: records what its hooks saw.

#[derive(Default)]
struct Record {
    /// One entry per found_terminator: the data collected before it.
    contents: Vec<Vec<u8>>,
    /// Collected since the last terminator.
    buffer: Vec<u8>,
    /// The terminator as seen at the last collect_incoming_data.
    last_terminator: Option<Terminator>,
    closes: usize,
    /// The terminator when handle_close ran.
    terminator_at_close: Option<Terminator>,
    errors: Vec<io::Error>,
}

struct EchoClient {
    rec: Rc<RefCell<Record>>,
}

impl AsyncChatHandler for EchoClient {
    fn collect_incoming_data(&mut self, ch: &mut AsyncChat, data: &[u8]) {
        let mut r = self.rec.borrow_mut();
        r.buffer.extend_from_slice(data);
        r.last_terminator = Some(ch.get_terminator().clone());
    }
    fn found_terminator(&mut self, _ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut r = self.rec.borrow_mut();
        let line = std::mem::take(&mut r.buffer);
        r.contents.push(line);
        Ok(())
    }
    fn handle_close(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut r = self.rec.borrow_mut();
        r.closes += 1;
        r.terminator_at_close = Some(ch.get_terminator().clone());
        ch.close();
        Ok(())
    }
    fn handle_error(&mut self, ch: &mut AsyncChat, err: io::Error, _cx: &mut Context<'_>) {
        self.rec.borrow_mut().errors.push(err);
        ch.close();
    }
}

/// An async_chat client connecting (non-blocking) to `addr`.
fn echo_client(
    map: &mut Map,
    term: impl Into<Terminator>,
    addr: SocketAddr,
) -> (Client, Rc<RefCell<Record>>) {
    let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    d.connect(addr).unwrap();
    let rec = Rc::new(RefCell::new(Record::default()));
    let token = map.add(
        AsyncChat::new(d).with_terminator(term),
        EchoClient { rec: rec.clone() },
    );
    (token, rec)
}

/// The handle of a test's chat channel.
type Client = Handle<AsyncChat, EchoClient>;

fn chat(map: &mut Map, client: Client) -> &mut AsyncChat {
    map.channel_mut(client).expect("channel alive")
}

/// test_asynchat's shape: push `pushes`, run the loop until the server
/// hangs up, return the record.
fn echo_dialogue(
    backend: Backend,
    term: impl Into<Terminator>,
    chunk: usize,
    setup: impl FnOnce(&mut AsyncChat),
) -> Rc<RefCell<Record>> {
    let server = echo_server(chunk, false);
    let mut map = Map::new();
    let (token, rec) = echo_client(&mut map, term, server.addr);
    setup(chat(&mut map, token));
    bounded(backend).run(&mut map).unwrap();
    assert!(
        map.is_empty(),
        "{}: the client did not see the server close",
        backend.name()
    );
    server.received();
    assert!(
        rec.borrow().errors.is_empty(),
        "errors: {:?}",
        rec.borrow().errors
    );
    rec
}

// ---------------------------------------------------------------------------
// test_asynchat's tests.

fn line_terminator_check(term: &[u8], chunk: usize) {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, term, chunk, |ch| {
            ch.push(b"hello ");
            ch.push(&[&b"world"[..], term].concat());
            ch.push(&[&b"I'm not dead yet!"[..], term].concat());
            ch.push(SERVER_QUIT);
        });
        assert_eq!(
            rec.borrow().contents,
            vec![b"hello world".to_vec(), b"I'm not dead yet!".to_vec()],
            "terminator {term:?}, server pieces of {chunk}, {}",
            backend.name()
        );
    }
}

#[test]
fn line_terminator_one_byte_arriving_in_pieces() {
    for chunk in [1, 2, 3] {
        line_terminator_check(b"\n", chunk);
    }
}

#[test]
fn line_terminator_two_bytes_arriving_in_pieces() {
    for chunk in [1, 2, 3] {
        line_terminator_check(b"\r\n", chunk);
    }
}

#[test]
fn line_terminator_three_bytes_arriving_in_pieces() {
    for chunk in [1, 2, 3] {
        line_terminator_check(b"qqq", chunk);
    }
}

const DATA: &[u8] = b"hello world, I'm not dead yet!\n";

#[test]
fn numeric_terminator_collects_exactly_n_bytes_then_fires() {
    for backend in LOOP_BACKENDS {
        for n in [1usize, 6] {
            let rec = echo_dialogue(backend, n, 3, |ch| {
                ch.push(DATA);
                ch.push(SERVER_QUIT);
            });
            let rec = rec.borrow();
            assert_eq!(rec.contents, vec![DATA[..n].to_vec()], "{}", backend.name());
            // After firing the count is 0, which collects the rest.
            assert_eq!(rec.buffer, DATA[n..], "{}", backend.name());
            assert_eq!(rec.last_terminator, Some(Terminator::Count(0)));
        }
    }
}

#[test]
fn numeric_terminator_larger_than_the_data_never_fires_and_counts_down() {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, 1000usize, 2, |ch| {
            ch.push(DATA);
            ch.push(SERVER_QUIT);
        });
        let rec = rec.borrow();
        assert!(rec.contents.is_empty());
        assert_eq!(rec.buffer, DATA);
        // The count went down by what was collected.
        assert_eq!(
            rec.terminator_at_close,
            Some(Terminator::Count(1000 - DATA.len()))
        );
    }
}

#[test]
fn numeric_terminator_zero_collects_everything_without_firing() {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, 0usize, 3, |ch| {
            ch.push(DATA);
            ch.push(SERVER_QUIT);
        });
        let rec = rec.borrow();
        assert!(rec.contents.is_empty());
        assert_eq!(rec.buffer, DATA);
    }
}

#[test]
fn none_terminator_collects_everything_without_firing() {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, Terminator::None, 3, |ch| {
            ch.push(DATA);
            ch.push(SERVER_QUIT);
        });
        let rec = rec.borrow();
        assert!(rec.contents.is_empty());
        assert_eq!(rec.buffer, DATA);
    }
}

/// The two lines and the quit command pushed through `push`, on both
/// backends: every byte arrives, in order.
fn producer_output_arrives_whole(push: fn(&mut AsyncChat, Vec<u8>)) {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, b"\n", 3, |ch| {
            push(
                ch,
                [&b"hello world\nI'm not dead yet!\n"[..], SERVER_QUIT].concat(),
            );
        });
        assert_eq!(
            rec.borrow().contents,
            vec![b"hello world".to_vec(), b"I'm not dead yet!".to_vec()]
        );
    }
}

#[test]
fn simple_producer_output_arrives_whole() {
    producer_output_arrives_whole(|ch, data| {
        ch.push_with_producer(SimpleProducer::with_buffer_size(data, 8))
    });
}

#[test]
fn string_producer_output_arrives_whole() {
    // A Vec<u8> is a producer that yields itself once.
    producer_output_arrives_whole(|ch, data| ch.push_with_producer(data));
}

#[test]
fn empty_lines_are_messages_too() {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, b"\n", 3, |ch| {
            ch.push(b"hello world\n\nI'm not dead yet!\n");
            ch.push(SERVER_QUIT);
        });
        assert_eq!(
            rec.borrow().contents,
            vec![
                b"hello world".to_vec(),
                b"".to_vec(),
                b"I'm not dead yet!".to_vec()
            ]
        );
    }
}

#[test]
fn close_when_done_sends_everything_then_closes() {
    for backend in LOOP_BACKENDS {
        let server = echo_server(3, true);
        let mut map = Map::new();
        let (token, rec) = echo_client(&mut map, b"\n", server.addr);
        let ch = chat(&mut map, token);
        ch.push(b"hello world\nI'm not dead yet!\n");
        ch.push(SERVER_QUIT);
        ch.close_when_done();
        ch.push(b"pushed after close_when_done: never sent\n");
        bounded(backend).run(&mut map).unwrap();
        // The client closed itself: the map is empty before the server
        // echoed anything.
        assert!(map.is_empty(), "{}", backend.name());
        if let Some(resend) = &server.resend {
            resend.send(()).unwrap();
        }
        assert_eq!(server.received(), b"hello world\nI'm not dead yet!\n");
        let rec = rec.borrow();
        assert!(rec.contents.is_empty());
        assert_eq!(
            rec.closes, 1,
            "handle_close runs once when the queue drains"
        );
    }
}

/// asynchat's push raises TypeError for anything but bytes
/// (`push(10)`, `push('unicode')`). Here `push` takes `&[u8]`, so those do
/// not compile (see the `compile_fail` example on `AsyncChat::push`); every
/// byte-ish value (array, Vec, slice of a String) goes through.
#[test]
fn push_takes_any_byte_slice() {
    for backend in LOOP_BACKENDS {
        let rec = echo_dialogue(backend, b"\n", 3, |ch| {
            let data: &[u8] = b"bytes\n";
            ch.push(data);
            let owned: Vec<u8> = data.to_vec();
            ch.push(&owned);
            ch.push(String::from("bytes\n").as_bytes());
            ch.push(b"");
            ch.push(SERVER_QUIT);
        });
        assert_eq!(
            rec.borrow().contents,
            vec![b"bytes".to_vec(), b"bytes".to_vec(), b"bytes".to_vec()]
        );
    }
}

#[test]
fn negative_terminator_is_refused_with_a_clear_error() {
    let err = Terminator::try_from(-1i64).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("-1"), "{err}");
    assert_eq!(Terminator::try_from(0i64).unwrap(), Terminator::Count(0));
}

// ---------------------------------------------------------------------------
// Channels on a Unix socket pair: the peer end is driven by the test.

fn pair_chat(
    map: &mut Map,
    term: impl Into<Terminator>,
) -> (Client, Rc<RefCell<Record>>, UnixStream) {
    let (ours, peer) = UnixStream::pair().unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let rec = Rc::new(RefCell::new(Record::default()));
    let ch = AsyncChat::new(Dispatcher::from_socket(ours).unwrap()).with_terminator(term);
    let token = map.add(ch, EchoClient { rec: rec.clone() });
    (token, rec, peer)
}

/// One loop iteration; `timeout` bounds it if nothing is ready.
fn once(map: &mut Map, backend: Backend) {
    Loop::new()
        .backend(backend)
        .timeout(ITERATION_PATIENCE)
        .count(1)
        .run(map)
        .unwrap();
}

/// Reads whatever is available now, without waiting.
fn read_available(peer: &mut UnixStream) -> Vec<u8> {
    peer.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match peer.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    peer.set_nonblocking(false).unwrap();
    out
}

/// Reads another socket's data out from under the chat channel, on a
/// duplicate of its fd, in the same iteration: the chat's `recv` then
/// would block (test_asynchat's mocked BlockingIOError, for real).
struct Thief {
    got: Rc<RefCell<Vec<u8>>>,
}

impl Handler for Thief {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 1024];
        let n = ch.recv(&mut buf)?;
        self.got.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
}

#[test]
fn would_block_during_read_is_ignored() {
    for backend in LOOP_BACKENDS {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut map = Map::new();
        let got = Rc::new(RefCell::new(Vec::new()));
        // Added first, so it is served first in the iteration.
        map.add(
            Dispatcher::from_socket(ours.try_clone().unwrap()).unwrap(),
            Thief { got: got.clone() },
        );
        let rec = Rc::new(RefCell::new(Record::default()));
        let token = map.add(
            AsyncChat::new(Dispatcher::from_socket(ours).unwrap()).with_terminator(b"\n"),
            EchoClient { rec: rec.clone() },
        );
        peer.write_all(b"x\n").unwrap();
        once(&mut map, backend);
        assert_eq!(
            *got.borrow(),
            b"x\n",
            "the thief read first ({})",
            backend.name()
        );
        let rec = rec.borrow();
        assert!(rec.errors.is_empty(), "{:?}", rec.errors);
        assert_eq!(rec.closes, 0);
        assert!(map.contains(token), "the chat channel is still open");
    }
}

#[test]
fn incoming_limit_closes_only_that_channel() {
    for backend in LOOP_BACKENDS {
        let mut map = Map::new();
        let (bad, bad_rec, mut bad_peer) = pair_chat(&mut map, b"\r\n");
        let (good, good_rec, mut good_peer) = pair_chat(&mut map, b"\r\n");
        for t in [bad, good] {
            chat(&mut map, t).set_max_incoming(16);
        }
        // Exactly at the limit is fine, split or not...
        good_peer.write_all(b"0123456789").unwrap();
        once(&mut map, backend);
        good_peer.write_all(b"abcdef\r\n").unwrap();
        once(&mut map, backend);
        assert_eq!(
            good_rec.borrow().contents,
            vec![b"0123456789abcdef".to_vec()]
        );
        // ...one byte more, even with its terminator in the same read, is not.
        bad_peer.write_all(b"0123456789abcdefX\r\n").unwrap();
        good_peer.write_all(b"still here\r\n").unwrap();
        once(&mut map, backend);
        {
            let bad_rec = bad_rec.borrow();
            assert!(
                bad_rec.contents.is_empty(),
                "the over-long line was not delivered"
            );
            assert_eq!(bad_rec.errors.len(), 1);
            let too_long = bad_rec.errors[0]
                .get_ref()
                .and_then(|e| e.downcast_ref::<IncomingTooLong>())
                .expect("an IncomingTooLong error");
            assert_eq!(too_long.limit, 16);
            assert_eq!(too_long.terminator, b"\r\n");
            assert_eq!(bad_rec.errors[0].kind(), io::ErrorKind::InvalidData);
        }
        assert!(!map.contains(bad), "the offender is closed");
        let mut rest = Vec::new();
        bad_peer.read_to_end(&mut rest).unwrap(); // EOF: its socket is closed
        assert!(map.contains(good));
        assert_eq!(
            good_rec.borrow().contents,
            vec![b"0123456789abcdef".to_vec(), b"still here".to_vec()]
        );
        assert!(good_rec.borrow().errors.is_empty());
    }
}

/// A protocol that answers a bad line with an error and goes on: its
/// `handle_error` keeps the channel. The rest of a read after a failing
/// line waits in the input buffer for the next read (as in asynchat); that
/// backlog must not grow by a read per event without bound.
#[test]
fn backlog_after_found_terminator_errors_is_bounded() {
    struct RejectsEverything {
        errors: Rc<RefCell<Vec<io::Error>>>,
    }
    impl AsyncChatHandler for RejectsEverything {
        fn found_terminator(
            &mut self,
            ch: &mut AsyncChat,
            _cx: &mut Context<'_>,
        ) -> io::Result<()> {
            ch.take_incoming();
            Err(io::Error::other("500 bad command"))
        }
        fn handle_error(&mut self, _ch: &mut AsyncChat, err: io::Error, _cx: &mut Context<'_>) {
            self.errors.borrow_mut().push(err); // and keep the channel
        }
    }
    for backend in LOOP_BACKENDS {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let errors = Rc::new(RefCell::new(Vec::new()));
        let mut ch = AsyncChat::new(Dispatcher::from_socket(ours).unwrap()).with_terminator(b"\n");
        ch.set_ac_in_buffer_size(64);
        ch.set_max_incoming(128);
        let mut map = Map::new();
        let token = map.add(
            ch,
            RejectsEverything {
                errors: errors.clone(),
            },
        );
        peer.write_all(&b"bad\n".repeat(1000)).unwrap();
        for _ in 0..500 {
            if !map.contains(token) {
                break;
            }
            lp(backend).count(1).run(&mut map).unwrap();
        }
        assert!(
            !map.contains(token),
            "{}: the backlog grew and the channel stayed",
            backend.name()
        );
        let errors = errors.borrow();
        let last = errors.last().expect("errors were reported");
        assert!(
            last.get_ref()
                .and_then(|e| e.downcast_ref::<IncomingTooLong>())
                .is_some(),
            "{}: the last error is {last}",
            backend.name()
        );
    }
}

#[test]
fn incoming_limit_counts_data_split_without_terminator() {
    for backend in LOOP_BACKENDS {
        let mut map = Map::new();
        let (token, rec, mut peer) = pair_chat(&mut map, b"\n");
        chat(&mut map, token).set_max_incoming(10);
        for piece in [&b"abcd"[..], b"efgh", b"ij"] {
            peer.write_all(piece).unwrap();
            once(&mut map, backend);
            assert!(map.contains(token));
        }
        peer.write_all(b"k").unwrap(); // the 11th byte
        once(&mut map, backend);
        assert!(!map.contains(token));
        assert_eq!(rec.borrow().errors.len(), 1);
    }
}

#[test]
fn output_is_sent_in_slices_of_ac_out_buffer_size() {
    for backend in LOOP_BACKENDS {
        let mut map = Map::new();
        let (token, _rec, mut peer) = pair_chat(&mut map, b"\n");
        let ch = chat(&mut map, token);
        ch.set_ac_out_buffer_size(4);
        ch.push(b"0123456789");
        // push sends one slice at once...
        assert_eq!(read_available(&mut peer), b"0123");
        // ...and each write event one more.
        once(&mut map, backend);
        assert_eq!(read_available(&mut peer), b"4567");
        once(&mut map, backend);
        assert_eq!(read_available(&mut peer), b"89");
        assert!(!chat(&mut map, token).has_output());
        // A producer's piece larger than the slice size is sliced too.
        chat(&mut map, token).push_with_producer(b"abcdefghij".to_vec());
        assert_eq!(read_available(&mut peer), b"abcd");
        once(&mut map, backend);
        assert_eq!(read_available(&mut peer), b"efgh");
    }
}

#[test]
fn readable_and_writable_follow_the_state() {
    for backend in LOOP_BACKENDS {
        let mut map = Map::new();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut ch = AsyncChat::new(Dispatcher::from_socket(ours).unwrap()).with_terminator(b"\n");
        let rec = Rc::new(RefCell::new(Record::default()));
        let mut h = EchoClient { rec: rec.clone() };
        // Connected, nothing queued: readable, not writable.
        assert!(Handler::readable(&mut h, &ch));
        assert!(!Handler::writable(&mut h, &ch));
        // More than the socket buffer takes: the rest is queued, writable.
        let big = vec![b'x'; 8 << 20];
        ch.push(&big);
        assert!(ch.has_output());
        assert!(Handler::writable(&mut h, &ch));
        // close_when_done keeps it writable until the queue drains.
        ch.close_when_done();
        let token = map.add(ch, h);
        let reader = thread::spawn(move || {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).unwrap();
            all.len()
        });
        bounded(backend).run(&mut map).unwrap();
        assert!(!map.contains(token), "closed once everything was sent");
        assert_eq!(reader.join().unwrap(), big.len());
        assert_eq!(rec.borrow().closes, 1);

        // Not yet connected: writable (to learn when the connect ends).
        let d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        let ch = AsyncChat::new(d);
        let mut h = EchoClient { rec };
        assert!(Handler::writable(&mut h, &ch));
    }
}

#[test]
fn discard_buffers_drops_queued_output_and_pending_close() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let mut ch = AsyncChat::new(Dispatcher::from_socket(ours).unwrap());
    ch.set_ac_out_buffer_size(2);
    ch.push(b"abcdef");
    ch.close_when_done();
    ch.discard_buffers();
    assert!(!ch.has_output());
    assert!(!ch.is_closed());
    ch.initiate_send().unwrap();
    assert_eq!(read_available(&mut peer), b"ab");
}

/// HTTP-like framing: the terminator changes inside found_terminator and
/// the change applies to the bytes already read.
struct Framed {
    rec: Rc<RefCell<Record>>,
}

impl AsyncChatHandler for Framed {
    fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        let data = ch.take_incoming();
        if matches!(ch.get_terminator(), Terminator::Bytes(_)) {
            let len = String::from_utf8_lossy(&data)
                .parse::<usize>()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            ch.set_terminator(len);
        } else {
            self.rec.borrow_mut().contents.push(data);
            ch.set_terminator(b"\r\n");
        }
        Ok(())
    }
    fn handle_error(&mut self, ch: &mut AsyncChat, err: io::Error, _cx: &mut Context<'_>) {
        self.rec.borrow_mut().errors.push(err);
        ch.close();
    }
}

#[test]
fn terminator_changed_in_found_terminator_applies_to_buffered_data() {
    for backend in LOOP_BACKENDS {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let rec = Rc::new(RefCell::new(Record::default()));
        let mut map = Map::new();
        map.add(
            AsyncChat::new(Dispatcher::from_socket(ours).unwrap()).with_terminator(b"\r\n"),
            Framed { rec: rec.clone() },
        );
        peer.write_all(b"5\r\nhello3\r\nabc0\r\n2\r\n\r\n").unwrap();
        once(&mut map, backend);
        assert!(rec.borrow().errors.is_empty(), "{:?}", rec.borrow().errors);
        // Count(0) collects everything and never fires (asynchat), so the
        // "0" message is followed by no body: the rest is collected.
        assert_eq!(
            rec.borrow().contents,
            vec![b"hello".to_vec(), b"abc".to_vec()]
        );
    }
}

// ---------------------------------------------------------------------------
// The property: the split into reads does not matter.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Found,
}

/// Records the hook calls; on each terminator, moves to the next
/// terminator of its script (so changes of terminator are covered too).
struct Scripted {
    events: Rc<RefCell<Vec<Ev>>>,
    script: Vec<Terminator>,
    next: usize,
}

impl AsyncChatHandler for Scripted {
    fn collect_incoming_data(&mut self, _ch: &mut AsyncChat, data: &[u8]) {
        let mut ev = self.events.borrow_mut();
        // Adjacent pieces are one piece: only the split differs.
        if let Some(Ev::Data(last)) = ev.last_mut() {
            last.extend_from_slice(data);
        } else if !data.is_empty() {
            ev.push(Ev::Data(data.to_vec()));
        }
    }
    fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        self.events.borrow_mut().push(Ev::Found);
        self.next = (self.next + 1) % self.script.len();
        ch.set_terminator(self.script[self.next].clone());
        Ok(())
    }
}

/// Feeds `input` in the pieces cut at `cuts`, one loop iteration per
/// piece, and returns the hook calls.
fn feed(input: &[u8], cuts: &[usize], script: &[Terminator], backend: Backend) -> Vec<Ev> {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let events = Rc::new(RefCell::new(Vec::new()));
    let mut map = Map::new();
    let mut ch =
        AsyncChat::new(Dispatcher::from_socket(ours).unwrap()).with_terminator(script[0].clone());
    ch.set_ac_in_buffer_size(4096); // every piece in one recv
    map.add(
        ch,
        Scripted {
            events: events.clone(),
            script: script.to_vec(),
            next: 0,
        },
    );
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        if end > start {
            peer.write_all(&input[start..end]).unwrap();
            once(&mut map, backend);
            start = end;
        }
    }
    let out = events.borrow().clone();
    out
}

fn terminator_strategy() -> impl Strategy<Value = Terminator> {
    let byte = prop::sample::select(vec![b'a', b'q', b'\r', b'\n']);
    prop_oneof![
        3 => prop::collection::vec(byte, 1..=3).prop_map(Terminator::Bytes),
        1 => (0usize..12).prop_map(Terminator::Count),
        1 => Just(Terminator::None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn any_split_into_reads_gives_the_same_hook_calls(
        input in prop::collection::vec(prop::sample::select(vec![b'a', b'q', b'\r', b'\n', b'x']), 1..160),
        cut_seeds in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
        script in prop::collection::vec(terminator_strategy(), 1..4),
        backend in prop::sample::select(LOOP_BACKENDS.to_vec()),
    ) {
        let mut cuts: Vec<usize> = cut_seeds.iter().map(|i| i.index(input.len())).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let whole = feed(&input, &[], &script, backend);
        let split = feed(&input, &cuts, &script, backend);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn byte_at_a_time_gives_the_same_hook_calls(
        input in prop::collection::vec(prop::sample::select(vec![b'a', b'q', b'\r', b'\n']), 1..60),
        script in prop::collection::vec(terminator_strategy(), 1..4),
    ) {
        let cuts: Vec<usize> = (1..input.len()).collect();
        for backend in LOOP_BACKENDS {
            let whole = feed(&input, &[], &script, backend);
            let split = feed(&input, &cuts, &script, backend);
            prop_assert_eq!(split, whole);
        }
    }
}
