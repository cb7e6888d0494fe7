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
        assert_eq!(
            map.handler_mut::<DatagramSink>(token).unwrap().got,
            4,
            "{name}"
        );
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
