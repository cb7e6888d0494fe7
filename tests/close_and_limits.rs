//! The dispatcher layer's defaults against hostile or careless peers: no
//! spin on an urgent byte or an unhandled write, resets told apart from
//! clean ends, listeners that drain their accept queue, bounded output,
//! and closes that lose no data. Every test runs on every backend.

mod common;

use common::{iterations_during, loop_backends, tcp_pair};
use selectloop::{AsyncChat, AsyncChatHandler, CloseReason, Context, Dispatcher, Handler, Map};
use std::cell::Cell;
use std::io;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

/// One iteration's wait when a test counts iterations.
const TICK: Duration = Duration::from_millis(20);
/// How long a test counts iterations.
const SPAN: Duration = Duration::from_millis(200);
/// More iterations than an idle loop runs in [`SPAN`] (about 10), far fewer
/// than a spinning one (thousands).
const IDLE_MAX: u64 = 40;

/// Reads and drops what arrives; every other hook is the default.
struct Sink;

impl Handler for Sink {
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        ch.recv(&mut buf)?;
        Ok(())
    }
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
}

#[test]
fn an_urgent_byte_costs_no_cpu_with_the_default_handle_expt() {
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut map = Map::new();
        map.add(Dispatcher::from_socket(server).unwrap(), Sink);
        socket2::SockRef::from(&client)
            .send_out_of_band(b"!")
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let n = iterations_during(&event_loop, &mut map, TICK, SPAN);
        assert!(
            n <= IDLE_MAX,
            "{name}: {n} iterations in {SPAN:?}: the urgent byte makes the loop spin"
        );
        assert_eq!(map.len(), 1, "{name}: the connection stays open");
    }
}

/// A line protocol that ignores its lines; every other hook is the default.
struct IgnoreLines;

impl AsyncChatHandler for IgnoreLines {
    fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.take_incoming();
        Ok(())
    }
}

#[test]
fn an_urgent_byte_costs_no_cpu_on_an_async_chat_either() {
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut map = Map::new();
        let ch = AsyncChat::new(Dispatcher::from_socket(server).unwrap()).with_terminator(b"\n");
        map.add(ch, IgnoreLines);
        socket2::SockRef::from(&client)
            .send_out_of_band(b"!")
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let n = iterations_during(&event_loop, &mut map, TICK, SPAN);
        assert!(
            n <= IDLE_MAX,
            "{name}: {n} iterations in {SPAN:?}: the urgent byte makes the loop spin"
        );
        assert_eq!(map.len(), 1, "{name}: the connection stays open");
    }
}

/// Answers every line with 256 KiB, and always wants input: `readable()`
/// overridden without the default's "while the output is under its
/// limit", as a handler that only tracks its own state would (kv_daemon's
/// `!self.peer_gone`).
struct BigAnswers;

impl AsyncChatHandler for BigAnswers {
    fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.take_incoming();
        ch.push(&[b'a'; 256 * 1024]);
        Ok(())
    }
    fn readable(&mut self, _ch: &AsyncChat) -> bool {
        true
    }
}

/// A client that sends requests and never reads the answers: the chat's
/// output goes over its limit and its input waits (a read then reads
/// nothing). Watching for input all the same would wake the loop at once,
/// every pass, for as long as the client stays: the channel is not watched
/// for input then, whatever its `readable()` says.
#[test]
fn an_async_chat_waiting_for_its_output_to_drain_costs_no_cpu() {
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut map = Map::new();
        let mut ch =
            AsyncChat::new(Dispatcher::from_socket(server).unwrap()).with_terminator(b"\n");
        ch.set_output_limit(1 << 20);
        map.add(ch, BigAnswers);
        // More requests than one read takes (as many as the socket
        // buffers hold): some stay unread in the socket.
        client.set_nonblocking(true).unwrap();
        let sent = (&client).write(&b"x\n".repeat(200_000)).unwrap();
        assert!(sent > 128 * 1024, "{name}: only {sent} bytes sent");
        // The answers fill the socket buffers, then the queue.
        iterations_during(&event_loop, &mut map, TICK, Duration::from_millis(300));
        let n = iterations_during(&event_loop, &mut map, TICK, SPAN);
        assert!(
            n <= IDLE_MAX,
            "{name}: {n} iterations in {SPAN:?}: the paused input makes the loop spin"
        );
        assert_eq!(map.len(), 1, "{name}: the connection stays open");
    }
}

/// Says goodbye, closes when done, then (by mistake) pushes once more.
struct LateWords;

impl AsyncChatHandler for LateWords {
    fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.take_incoming();
        ch.push(b"bye\n");
        ch.close_when_done();
        ch.push(b"late\n");
        Ok(())
    }
}

/// What is pushed after `close_when_done` is never sent (as in asynchat),
/// and the channel closes once the rest is out: the peer reads `bye` and
/// then its end of file. (It used to get `late` too, and never the end.)
#[test]
fn a_push_after_close_when_done_is_not_sent_and_the_channel_closes() {
    use std::io::Read;
    for (name, event_loop) in loop_backends() {
        let (server, mut client) = tcp_pair();
        let mut map = Map::new();
        let ch = AsyncChat::new(Dispatcher::from_socket(server).unwrap()).with_terminator(b"\n");
        map.add(ch, LateWords);
        client.write_all(b"quit\n").unwrap();
        run_until_empty(&event_loop, &mut map);
        client.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye\n", "{name}");
    }
}

/// A datagram reader: overrides `handle_read` only, as a UDP server that
/// never answers would.
struct DatagramSink {
    got: usize,
}

impl Handler for DatagramSink {
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 2048];
        let (n, _from) = ch.recvfrom(&mut buf)?;
        self.got += n;
        Ok(())
    }
}

/// Receives datagrams on a `DispatcherWithSend` (by mistake: it has no
/// peer to send to).
struct BufferedDatagramSink;

impl Handler<selectloop::DispatcherWithSend> for BufferedDatagramSink {
    fn handle_read(
        &mut self,
        ch: &mut selectloop::DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut buf = [0u8; 2048];
        ch.recvfrom(&mut buf)?;
        Ok(())
    }
}

/// A `DispatcherWithSend` over a datagram socket that is not connected:
/// `send` is refused (`EDESTADDRREQ`, nothing queued to wait for good),
/// and the channel does not ask to write, so the loop stays idle. (It
/// queued the bytes and spun: hundreds of thousands of passes.)
#[test]
fn a_buffered_datagram_socket_without_a_peer_refuses_send_and_stays_idle() {
    use selectloop::{DispatcherWithSend, Domain, Type};
    for (name, event_loop) in loop_backends() {
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::DGRAM).unwrap();
        d.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap();
        let mut ch = DispatcherWithSend::new(d);
        let err = ch.send(b"hello").unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EDESTADDRREQ),
            "{name}: {err}"
        );
        assert_eq!(ch.pending(), 0, "{name}");
        let mut map = Map::new();
        map.add(ch, BufferedDatagramSink);
        let n = iterations_during(&event_loop, &mut map, TICK, SPAN);
        assert!(
            n <= IDLE_MAX,
            "{name}: {n} iterations in {SPAN:?}: the datagram socket spins"
        );

        // Connected (`connect`, then `send` at once, as with a stream):
        // queued until the loop sees the connect done, then delivered.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(common::PATIENCE)).unwrap();
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::DGRAM).unwrap();
        d.connect(peer.local_addr().unwrap()).unwrap();
        let mut ch = DispatcherWithSend::new(d);
        assert_eq!(ch.send(b"hello").unwrap(), 5, "{name}");
        let mut map = Map::new();
        map.add(ch, BufferedDatagramSink);
        iterations_during(&event_loop, &mut map, TICK, Duration::from_millis(60));
        let mut got = [0u8; 16];
        let n = peer.recv(&mut got).unwrap();
        assert_eq!(&got[..n], b"hello", "{name}");
    }
}

/// A listener whose socket was shut down can never accept again: it is
/// closed, on every backend. (poll and epoll report `POLLHUP`; on select
/// it stayed readable, `accept` failed with `EINVAL`, and the default
/// `handle_error`, which keeps listeners, saw it on every pass: a spin.)
#[test]
fn a_listener_shut_down_is_closed_not_retried() {
    use selectloop::{Domain, Type};
    for (name, event_loop) in loop_backends() {
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        d.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap();
        d.listen(5).unwrap();
        d.shutdown(std::net::Shutdown::Read).unwrap();
        let mut map = Map::new();
        map.add(d, Sink);
        let mut one = event_loop.clone().timeout(TICK);
        let mut passes = 0;
        while !map.is_empty() && passes < 100 {
            one.iterate(&mut map).unwrap();
            passes += 1;
        }
        assert!(
            map.is_empty(),
            "{name}: the dead listener is still in the map after {passes} passes"
        );
        assert!(passes <= 3, "{name}: closed after {passes} passes");
    }
}

#[test]
fn a_default_datagram_dispatcher_stays_idle() {
    use selectloop::{Domain, Type};
    for (name, event_loop) in loop_backends() {
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::DGRAM).unwrap();
        d.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap();
        let to = d.addr().and_then(|a| a.as_socket()).unwrap();
        let mut map = Map::new();
        let token = map.add(d, DatagramSink { got: 0 });
        let n = iterations_during(&event_loop, &mut map, TICK, SPAN);
        assert!(
            n <= IDLE_MAX,
            "{name}: {n} iterations in {SPAN:?}: the default writable() spins"
        );
        // Still reading: a datagram sent now arrives.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"ping", to).unwrap();
        iterations_during(&event_loop, &mut map, TICK, Duration::from_millis(60));
        assert_eq!(map.handler_mut(token).unwrap().got, 4, "{name}");
    }
}

/// Records how its connection ended.
struct EndWatcher {
    reason: Rc<Cell<Option<Option<CloseReason>>>>,
}

impl Handler for EndWatcher {
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        ch.recv(&mut buf)?;
        Ok(())
    }
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        self.reason.set(Some(ch.close_reason()));
        ch.close();
        Ok(())
    }
}

#[test]
fn a_reset_is_told_apart_from_a_clean_end_of_file() {
    for (name, event_loop) in loop_backends() {
        for reset in [false, true] {
            let (server, client) = tcp_pair();
            let mut map = Map::new();
            let reason = Rc::new(Cell::new(None));
            let watcher = EndWatcher {
                reason: Rc::clone(&reason),
            };
            map.add(Dispatcher::from_socket(server).unwrap(), watcher);
            (&client).write_all(b"some data").unwrap();
            if reset {
                common::reset(client);
            } else {
                drop(client);
            }
            event_loop
                .clone()
                .timeout(TICK)
                .count(100)
                .run(&mut map)
                .unwrap();
            assert!(map.is_empty(), "{name}: closed");
            let want = if reset {
                CloseReason::Reset
            } else {
                CloseReason::Eof
            };
            assert_eq!(reason.get(), Some(Some(want)), "{name}, reset: {reset}");
        }
    }
}

/// A listener on 127.0.0.1 (port chosen by the kernel) and its address.
fn listener(backlog: i32) -> (Dispatcher, std::net::SocketAddr) {
    use selectloop::{Domain, Type};
    let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    d.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    d.listen(backlog).unwrap();
    let addr = d.addr().and_then(|a| a.as_socket()).unwrap();
    (d, addr)
}

/// Counts the connections handed to `handle_accepted`, keeping them open;
/// fails each with `fail` (an errno) instead, if set.
struct CountingAcceptor {
    accepted: Rc<Cell<usize>>,
    fail: Option<i32>,
    kept: Vec<selectloop::Socket>,
}

impl Handler for CountingAcceptor {
    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        sock: selectloop::Socket,
        _addr: selectloop::SockAddr,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if let Some(code) = self.fail {
            return Err(io::Error::from_raw_os_error(code));
        }
        self.accepted.set(self.accepted.get() + 1);
        self.kept.push(sock);
        Ok(())
    }
}

#[test]
fn the_default_handle_accept_takes_what_is_waiting_in_one_pass() {
    for (name, event_loop) in loop_backends() {
        let (d, addr) = listener(128);
        let accepted = Rc::new(Cell::new(0));
        let mut map = Map::new();
        let acceptor = CountingAcceptor {
            accepted: Rc::clone(&accepted),
            fail: None,
            kept: Vec::new(),
        };
        map.add(d, acceptor);
        let clients: Vec<_> = (0..30).map(|_| common::connect(addr)).collect();
        std::thread::sleep(Duration::from_millis(20));
        event_loop.clone().timeout(TICK).iterate(&mut map).unwrap();
        assert_eq!(accepted.get(), 30, "{name}: one wake-up accepts all 30");
        drop(clients);
    }
}

#[test]
fn an_fd_shortage_in_handle_accepted_pauses_the_listener() {
    for (name, event_loop) in loop_backends() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            let (d, addr) = listener(128);
            let accepted = Rc::new(Cell::new(0));
            let mut map = Map::new();
            let acceptor = CountingAcceptor {
                accepted: Rc::clone(&accepted),
                fail: Some(code),
                kept: Vec::new(),
            };
            let token = map.add(d, acceptor);
            let clients: Vec<_> = (0..3).map(|_| common::connect(addr)).collect();
            std::thread::sleep(Duration::from_millis(20));
            let n = iterations_during(&event_loop, &mut map, TICK, SPAN);
            assert!(
                map.contains(token),
                "{name}, errno {code}: the listener stays"
            );
            // Paused: one failure per 100 ms at most, not one per pass.
            assert!(n <= IDLE_MAX, "{name}, errno {code}: {n} iterations: spins");
            // It accepts again once the shortage is over.
            map.handler_mut(token).unwrap().fail = None;
            let _late = common::connect(addr);
            iterations_during(&event_loop, &mut map, TICK, SPAN);
            assert!(accepted.get() >= 1, "{name}, errno {code}: accepts again");
            drop(clients);
        }
    }
}

/// Answers every line, as a chat server asks for a name.
struct AskAgain;

impl AsyncChatHandler for AskAgain {
    fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.take_incoming();
        ch.push(b"What's your name?\r\n");
        Ok(())
    }
}

#[test]
fn an_async_chat_whose_answers_pile_up_stops_reading() {
    const LIMIT: usize = 64 * 1024;
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        socket2::SockRef::from(&client)
            .set_nonblocking(true)
            .unwrap();
        let mut map = Map::new();
        let mut ch =
            AsyncChat::new(Dispatcher::from_socket(server).unwrap()).with_terminator(b"\n");
        ch.set_output_limit(LIMIT);
        let token = map.add(ch, AskAgain);
        let lines = vec![b'\n'; 64 * 1024];
        let mut sent = 0;
        let mut max_heap = 0;
        for _ in 0..2000 {
            if let Ok(n) = (&client).write(&lines) {
                sent += n;
            }
            event_loop
                .clone()
                .timeout(Duration::ZERO)
                .iterate(&mut map)
                .unwrap();
            let ch = map.channel_mut(token).unwrap();
            max_heap = max_heap.max(ch.queued_heap());
        }
        // One answer past the limit at most (plus a half-used buffer).
        assert!(
            max_heap < LIMIT + 64 * 1024,
            "{name}: {max_heap} bytes of heap queued"
        );
        assert!(
            sent < 64 << 20,
            "{name}: {sent} bytes read from a peer that never reads"
        );
    }
}

/// A peer that half-closes at once, then reads slowly to the end; returns
/// how many bytes it got and whether the connection ended with a reset.
fn half_closing_slow_reader(client: std::net::TcpStream) -> std::thread::JoinHandle<(usize, bool)> {
    slow_reader(client, |c| c.shutdown(std::net::Shutdown::Write).unwrap())
}

/// A peer that first does `start` on its connection, then reads slowly to
/// the end; returns how many bytes it got and whether it saw a reset.
fn slow_reader(
    client: std::net::TcpStream,
    start: impl FnOnce(&std::net::TcpStream) + Send + 'static,
) -> std::thread::JoinHandle<(usize, bool)> {
    std::thread::spawn(move || {
        use std::io::Read;
        start(&client);
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0;
        let mut reads = 0u32;
        loop {
            match (&client).read(&mut buf) {
                Ok(0) => return (got, false),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (got, true),
                Err(e) => panic!("after {got} bytes: {e}"),
            }
            reads += 1;
            if reads % 8 == 0 {
                std::thread::sleep(Duration::from_millis(2)); // a slow reader
            }
        }
    })
}

/// Runs `map` until it is empty, at most [`common::PATIENCE`].
fn run_until_empty(event_loop: &selectloop::Loop, map: &mut Map) {
    let start = std::time::Instant::now();
    while !map.is_empty() {
        assert!(
            start.elapsed() < common::PATIENCE,
            "the channel never closed"
        );
        event_loop.clone().timeout(TICK).iterate(map).unwrap();
    }
}

/// Writes nothing of its own; every hook is the default.
struct Quiet;

impl Handler<selectloop::DispatcherWithSend> for Quiet {
    fn handle_read(
        &mut self,
        ch: &mut selectloop::DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        ch.recv(&mut buf)?;
        Ok(())
    }
}

const EIGHT_MIB: usize = 8 << 20;

#[test]
fn a_half_close_with_output_queued_delivers_it_all_dispatcher_with_send() {
    use selectloop::DispatcherWithSend;
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut ch = DispatcherWithSend::new(Dispatcher::from_socket(server).unwrap())
            .with_output_limit(16 << 20);
        ch.send(&vec![7u8; EIGHT_MIB]).unwrap();
        let mut map = Map::new();
        map.add(ch, Quiet);
        let reader = half_closing_slow_reader(client);
        run_until_empty(&event_loop, &mut map);
        let (got, reset) = reader.join().unwrap();
        assert_eq!(
            got, EIGHT_MIB,
            "{name}: bytes delivered after the peer's half-close"
        );
        assert!(!reset, "{name}: ended with a reset");
    }
}

#[test]
fn a_half_close_with_output_queued_delivers_it_all_async_chat() {
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut ch =
            AsyncChat::new(Dispatcher::from_socket(server).unwrap()).with_terminator(b"\n");
        ch.set_output_limit(16 << 20);
        ch.push(&vec![7u8; EIGHT_MIB]);
        let mut map = Map::new();
        map.add(ch, IgnoreLines);
        let reader = half_closing_slow_reader(client);
        run_until_empty(&event_loop, &mut map);
        let (got, reset) = reader.join().unwrap();
        assert_eq!(
            got, EIGHT_MIB,
            "{name}: bytes delivered after the peer's half-close"
        );
        assert!(!reset, "{name}: ended with a reset");
    }
}

/// A peer that sends input the server never reads, then reads slowly to
/// the end; returns how many bytes it got and whether it saw a reset.
fn sending_slow_reader(client: std::net::TcpStream) -> std::thread::JoinHandle<(usize, bool)> {
    slow_reader(client, |c| {
        let mut c = c;
        c.write_all(&vec![1u8; 100 * 1024]).unwrap()
    })
}

/// Never reads: the peer's input stays unread in the socket. (A handler
/// that overrides `readable()` lets a lingering close read, or the close
/// waits for [`selectloop::LINGER_TIME`].)
struct Deaf;

impl Handler<selectloop::DispatcherWithSend> for Deaf {
    fn readable(&mut self, ch: &selectloop::DispatcherWithSend) -> bool {
        ch.is_lingering()
    }
}

impl AsyncChatHandler for Deaf {
    fn found_terminator(&mut self, _ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }
    fn readable(&mut self, ch: &AsyncChat) -> bool {
        ch.is_lingering()
    }
}

#[test]
fn close_when_done_with_unread_input_delivers_the_tail_dispatcher_with_send() {
    use selectloop::DispatcherWithSend;
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut ch = DispatcherWithSend::new(Dispatcher::from_socket(server).unwrap())
            .with_output_limit(16 << 20);
        ch.send(&vec![7u8; EIGHT_MIB]).unwrap();
        ch.close_when_done();
        let mut map = Map::new();
        map.add(ch, Deaf);
        let reader = sending_slow_reader(client);
        run_until_empty(&event_loop, &mut map);
        let (got, reset) = reader.join().unwrap();
        assert!(!reset, "{name}: reset after {got} bytes");
        assert_eq!(got, EIGHT_MIB, "{name}: bytes delivered");
    }
}

#[test]
fn close_when_done_with_unread_input_delivers_the_tail_async_chat() {
    for (name, event_loop) in loop_backends() {
        let (server, client) = tcp_pair();
        let mut ch = AsyncChat::new(Dispatcher::from_socket(server).unwrap());
        ch.set_output_limit(16 << 20);
        ch.push(&vec![7u8; EIGHT_MIB]);
        ch.close_when_done();
        let mut map = Map::new();
        map.add(ch, Deaf);
        let reader = sending_slow_reader(client);
        run_until_empty(&event_loop, &mut map);
        let (got, reset) = reader.join().unwrap();
        assert!(!reset, "{name}: reset after {got} bytes");
        assert_eq!(got, EIGHT_MIB, "{name}: bytes delivered");
    }
}

/// An echo server's connection handler (examples/echo_server.rs): every
/// read pushes an idle deadline back, and the idle timeout closes politely
/// (`close_when_done`) instead of at once. Neither may keep a lingering
/// close open: the lingering close's deadline is its own.
struct IdleTimeout;

impl Handler<selectloop::DispatcherWithSend> for IdleTimeout {
    fn readable(&mut self, ch: &selectloop::DispatcherWithSend) -> bool {
        ch.is_lingering()
    }
    fn handle_read(
        &mut self,
        ch: &mut selectloop::DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        ch.set_timeout(Duration::from_secs(60));
        ch.recv(&mut [0u8; 64]).map(drop)
    }
    fn handle_timeout(
        &mut self,
        ch: &mut selectloop::DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        ch.close_when_done();
        Ok(())
    }
}

/// A lingering close whose peer never sends its end of file (and, with
/// `trickle`, keeps sending a byte now and then) ends after
/// [`selectloop::LINGER_TIME`], whatever the handler's deadlines.
fn lingering_close_ends_in_time<H>(
    event_loop: selectloop::Loop,
    handler: H,
    trickle: bool,
) -> Duration
where
    H: Handler<selectloop::DispatcherWithSend> + 'static,
{
    use selectloop::DispatcherWithSend;
    let (server, client) = tcp_pair();
    (&client).write_all(&[1u8; 1000]).unwrap(); // never read by the server
    std::thread::sleep(Duration::from_millis(20));
    let mut ch = DispatcherWithSend::new(Dispatcher::from_socket(server).unwrap());
    ch.send(b"bye").unwrap();
    ch.close_when_done();
    let mut map = Map::new();
    map.add(ch, handler);
    let sender = trickle.then(|| {
        let client = client.try_clone().unwrap();
        std::thread::spawn(move || {
            // Until the server closes (a write fails) or 3 × LINGER_TIME.
            for _ in 0..30 {
                std::thread::sleep(selectloop::LINGER_TIME / 10);
                if (&client).write_all(&[2u8]).is_err() {
                    return;
                }
            }
        })
    });
    let start = std::time::Instant::now();
    run_until_empty(&event_loop, &mut map);
    let took = start.elapsed();
    drop(client);
    if let Some(sender) = sender {
        sender.join().unwrap();
    }
    took
}

#[test]
fn a_lingering_close_ends_by_itself_if_the_peer_never_closes() {
    // Each run waits LINGER_TIME: on threads of their own, at once.
    let runs: Vec<_> = loop_backends()
        .into_iter()
        .flat_map(|(name, event_loop)| {
            let second = event_loop.clone();
            let quiet = std::thread::spawn(move || {
                let took = lingering_close_ends_in_time(event_loop, Deaf, false);
                (format!("{name}, default handle_timeout"), took)
            });
            let pushy = std::thread::spawn(move || {
                let took = lingering_close_ends_in_time(second, IdleTimeout, true);
                (format!("{name}, idle timeout pushed back by reads"), took)
            });
            [quiet, pushy]
        })
        .collect();
    for run in runs {
        let (what, took) = run.join().expect("a run failed");
        assert!(
            took >= selectloop::LINGER_TIME && took < selectloop::LINGER_TIME * 2,
            "{what}: closed after {took:?}"
        );
    }
}

#[test]
fn std_traits_fds_read_and_write() {
    use selectloop::{DispatcherWithSend, FileWrapper};
    use std::io::Read;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};
    // Dispatcher: Read is recv, Write is send, the fd is the socket's.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let raw = a.as_raw_fd();
    let mut d = Dispatcher::from_socket(a).unwrap();
    assert_eq!(d.as_raw_fd(), raw);
    assert_eq!(d.as_fd().as_raw_fd(), raw);
    assert_eq!(d.write(b"ping").unwrap(), 4);
    let mut got = [0u8; 4];
    (&b).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    (&b).write_all(b"pong").unwrap();
    assert_eq!(d.read(&mut got).unwrap(), 4);
    assert_eq!(
        d.read(&mut got).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    // A buffered type's write queues, and its Debug counts queued bytes.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut w = DispatcherWithSend::new(Dispatcher::from_socket(a).unwrap());
    let big = vec![1u8; 4 << 20];
    assert_eq!(
        w.write(&big).unwrap(),
        big.len(),
        "all taken: sent or queued"
    );
    assert!(w.pending() > 0);
    let repr = format!("{w:?}");
    assert!(
        repr.ends_with(&format!("({} bytes queued)", w.pending())),
        "{repr}"
    );
    assert_eq!(
        w.write(b"x").unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "full"
    );
    assert_eq!(w.as_raw_fd(), w.fileno().unwrap());
    drop(b);
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut chat = AsyncChat::new(Dispatcher::from_socket(a).unwrap());
    assert_eq!(chat.write(&big).unwrap(), big.len());
    let repr = format!("{chat:?}");
    assert!(
        repr.contains(&format!("{} bytes queued", chat.pending_output())),
        "{repr}"
    );
    assert!(chat.as_fd().as_raw_fd() >= 0);
    // FileWrapper from an OwnedFd: the same fd, no dup.
    let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    let raw = r.as_raw_fd();
    let mut fw = FileWrapper::from(OwnedFd::from(r));
    assert_eq!(fw.as_raw_fd(), raw);
    (&w).write_all(b"abc").unwrap();
    let mut three = [0u8; 3];
    fw.read_exact(&mut three).unwrap();
    assert_eq!(&three, b"abc");
}
