//! Python's `asyncore` and `asynchat`, reborn in Rust: a small, exact event
//! loop over the raw `select(2)` and `poll(2)` syscalls.
//!
//! If you know asyncore, you know this crate: a **map** of channels, a
//! **loop** that asks each channel whether it is `readable()` and
//! `writable()`, waits in select(2) or poll(2), and calls `handle_read`,
//! `handle_write`, `handle_accept`, `handle_connect`, `handle_close`, ... on
//! the channels that are ready. The names are asyncore's wherever a Python
//! user would look for them (the table at the end maps them all).
//!
//! # A first program
//!
//! The echo server of asyncore's documentation, with a client thread so the
//! example runs on its own:
//!
//! ```
//! use selectloop::{Context, Dispatcher, DispatcherWithSend, Domain, Handler, Loop, Map, SockAddr, Socket, Type};
//! use std::io::{self, Read, Write};
//! use std::time::Duration;
//!
//! struct EchoHandler;
//!
//! impl Handler<DispatcherWithSend> for EchoHandler {
//!     fn handle_read(&mut self, ch: &mut DispatcherWithSend, _cx: &mut Context<'_>) -> io::Result<()> {
//!         let mut data = [0u8; 8192];
//!         let n = ch.recv(&mut data)?;
//!         if n > 0 {
//!             ch.send(&data[..n])?;
//!         }
//!         Ok(())
//!     }
//!     fn handle_close(&mut self, ch: &mut DispatcherWithSend, cx: &mut Context<'_>) -> io::Result<()> {
//!         ch.close();
//!         cx.exit(); // one client is all this example serves
//!         Ok(())
//!     }
//! }
//!
//! struct EchoServer;
//!
//! impl Handler for EchoServer {
//!     fn handle_accepted(&mut self, _ch: &mut Dispatcher, sock: Socket, _addr: SockAddr, cx: &mut Context<'_>) -> io::Result<()> {
//!         cx.add(DispatcherWithSend::new(Dispatcher::from_socket(sock)?), EchoHandler);
//!         Ok(())
//!     }
//! }
//!
//! let mut server = Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?;
//! server.set_reuse_addr()?;
//! server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())?;
//! server.listen(5)?;
//! let addr = server.addr().and_then(|a| a.as_socket()).unwrap();
//!
//! let client = std::thread::spawn(move || -> io::Result<Vec<u8>> {
//!     let mut s = std::net::TcpStream::connect(addr)?;
//!     s.write_all(b"hello")?;
//!     let mut echo = [0u8; 5];
//!     s.read_exact(&mut echo)?;
//!     Ok(echo.to_vec())
//! });
//!
//! let mut map = Map::new();
//! map.add(server, EchoServer);
//! Loop::new().timeout(Duration::from_millis(100)).count(1000).run(&mut map)?;
//! assert_eq!(client.join().unwrap()?, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Why an event loop
//!
//! A server talks to many clients at once. The seed articles of this crate
//! list the three classic ways:
//!
//! 1. **A process per client** (`ForkingMixIn`): simple and isolated, but a
//!    fork per connection is heavy and sharing state needs IPC.
//! 2. **A thread per client** (`ThreadingMixIn`): cheaper, but every shared
//!    structure needs a lock, and ten thousand stacks are not free.
//! 3. **I/O multiplexing** (`select`, `poll`; asyncore): one thread asks the
//!    kernel "which of these sockets can I use without blocking?", serves
//!    exactly those, and asks again. No locks, no stacks; a handler only has
//!    to never block. Network servers are rarely CPU-bound, so one thread
//!    waiting on all sockets at once is usually the fastest of the three.
//!
//! This crate is the third way, in three layers you can use separately:
//!
//! | layer | module | asyncore |
//! |---|---|---|
//! | syscall wrappers | [`sys`]: [`sys::select`], [`sys::poll`], [`sys::FdSet`], [`sys::PollFd`] | `select.select`, `select.poll` |
//! | map and loop | [`Map`], [`Loop`], [`poll`], [`poll2`], [`readwrite`] | `socket_map`, `loop`, `poll`, `poll2`, `readwrite` |
//! | dispatchers | [`Dispatcher`] + [`Handler`], [`DispatcherWithSend`], [`Dispatcher::file_dispatcher`] + [`FileWrapper`] | `dispatcher`, `dispatcher_with_send`, `file_dispatcher`, `file_wrapper` |
//! | conversations | [`AsyncChat`] + [`AsyncChatHandler`], [`Terminator`], [`Producer`], [`SimpleProducer`] (a line-based example: `examples/chat_server.rs`) | `asynchat.async_chat`, `simple_producer` |
//!
//! # select(2) and poll(2)
//!
//! Both syscalls answer the same question; they differ in how you ask.
//!
//! **select(2)** takes three *fd sets* (bitmaps): fds to watch for reading,
//! for writing, and for "exceptional conditions" (in practice: TCP
//! out-of-band data), plus a timeout. It overwrites the sets with the fds
//! that are ready, so they must be rebuilt before every call.
//!
//! ```
//! use selectloop::sys::{select, FdSet};
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//!
//! let (a, _b) = std::os::unix::net::UnixStream::pair()?;
//! let (mut read, mut write, mut except) = (FdSet::new(), FdSet::new(), FdSet::new());
//! read.insert(a.as_raw_fd())?;  // nothing to read yet...
//! write.insert(a.as_raw_fd())?; // ...but a socket buffer with room is writable
//! let ready = select(&mut read, &mut write, &mut except, Some(Duration::ZERO))?;
//! assert_eq!(ready, 1);
//! assert!(!read.contains(a.as_raw_fd()) && write.contains(a.as_raw_fd()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **poll(2)** takes an array of `struct pollfd { fd, events, revents }`:
//! for each fd the events you want (`POLLIN`, `POLLPRI`, `POLLOUT`), and the
//! kernel fills in `revents`. The array is input and output at once and can
//! be kept from one call to the next.
//!
//! ```
//! use selectloop::sys::{poll, PollFd, PollFlags};
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//!
//! let (a, b) = std::os::unix::net::UnixStream::pair()?;
//! drop(b); // the peer hangs up
//! let mut fds = [PollFd::new(a.as_raw_fd(), PollFlags::EMPTY)]; // ask for nothing...
//! poll(&mut fds, Some(Duration::ZERO))?;
//! assert!(fds[0].revents().contains(PollFlags::POLLHUP)); // ...and still hear of the hang-up
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Where they differ, and what the crate does about it:
//!
//! | | select(2) | poll(2) |
//! |---|---|---|
//! | fds it can watch | only `0..FD_SETSIZE` (1024 on Linux); a larger fd is undefined behaviour in C and a panic in nix. Here: [`sys::FdSetSizeError`], delivered to that channel's `handle_error` only | any fd |
//! | hang-up, error | only as "readable" (then `recv` returns 0 or fails) | `POLLHUP` and `POLLERR`, reported even if not asked for: the loop calls `handle_close`, or, if `POLLIN` came too, lets `handle_read` drain what is left first |
//! | fd closed while watched | the whole call fails with `EBADF` | that entry gets `POLLNVAL`, on every call: a spin, unless handled. Here: the channel gets `handle_error` and is removed, on both backends |
//! | urgent data | the except set | `POLLPRI`; both become `handle_expt` |
//! | cost per call | proportional to the *highest* fd (bitmaps up to it are copied and scanned both ways) | proportional to the *number* of fds watched |
//! | timeout | `timeval`, microseconds | milliseconds; sub-millisecond timeouts are rounded up here, never down to a busy 0 |
//!
//! Both are O(n) per call in the number of watched fds, which is why neither
//! scales to tens of thousands of mostly idle connections (that is what
//! epoll and kqueue are for). For a few hundred busy connections they are as
//! fast as anything: one syscall serves every ready socket. Both are
//! interrupted by signals (`EINTR`); the wrappers here retry with the time
//! that is left.
//!
//! # From readiness to handlers: the event rules
//!
//! Every iteration, each channel in the map is asked [`Handler::readable`]
//! and [`Handler::writable`]. The answers become the fd sets (select) or the
//! `pollfd` array (poll): readable → read set and except set / `POLLIN |
//! POLLPRI`; writable and not listening → write set and except set /
//! `POLLOUT`. A channel that is connecting always waits for writability,
//! since that is how the kernel reports a finished connect.
//!
//! Then each ready channel gets its handlers, in this order:
//!
//! | the kernel says | the channel is | the loop calls |
//! |---|---|---|
//! | readable / `POLLIN` | listening | `handle_accept` (default: `accept`, then `handle_accepted`) |
//! | readable / `POLLIN` | connecting | `handle_connect`, then `handle_read` |
//! | readable / `POLLIN` | connected | `handle_read` |
//! | writable / `POLLOUT` | listening | nothing |
//! | writable / `POLLOUT` | connecting | `handle_connect`, then `handle_write` |
//! | writable / `POLLOUT` | connected | `handle_write` |
//! | except set / `POLLPRI` | `SO_ERROR` set | `handle_close` |
//! | except set / `POLLPRI` | otherwise | `handle_expt` |
//! | `POLLHUP`, `POLLERR` | with `POLLIN` | `handle_read` only: the data left is read first, and `recv` returning 0 is the close |
//! | `POLLHUP`, `POLLERR` | without `POLLIN` | `handle_close` |
//!
//! A handler returns `io::Result<()>`. An error that means "the peer is
//! gone" (`ECONNRESET`, `EPIPE`, ... [`DISCONNECTED`]) leads to
//! `handle_close`; `WouldBlock` is ignored (a spurious wake-up); any other
//! error goes to `handle_error`, whose default logs it and closes the
//! channel. `recv` returning 0 (the peer closed) leads to `handle_close`
//! right after the handler returns. A channel that closes gets no further
//! events, not even the rest of the iteration's. The loop ends when the map
//! is empty, after `count` iterations, or when a handler calls
//! [`Context::exit`] (asyncore's `ExitNow`).
//!
//! # The shape in Rust
//!
//! In Python a dispatcher is one object: socket and event handlers. Here
//! those are two values: the [`Dispatcher`] (the socket and its flags
//! `connected`, `accepting`, `connecting`, `addr`) and your handler, a
//! struct implementing [`Handler`]. Each event hands your handler its
//! dispatcher (`ch`) and a [`Context`] (`cx`):
//!
//! * `cx.add(dispatcher, handler)` registers a new channel (a listener
//!   accepting, a forwarder connecting to the remote);
//! * `cx.close(token)` closes another channel (a forwarder closing its peer);
//! * `cx.channel_mut::<D>(token)` reaches another channel (a chat server
//!   sending a line to every user);
//! * `cx.exit()` stops the loop.
//!
//! Two handlers that share a buffer (the two halves of a forwarded
//! connection) share it as `Rc<RefCell<_>>`: the loop is single-threaded, so
//! that is all the sharing needed.
//!
//! A channel is named by a [`Token`] (slot + generation), not by its fd: the
//! kernel reuses fd numbers at once, and an event that select(2) reported for
//! fd 7 must never reach a newcomer that got fd 7 after the old channel
//! closed in the same iteration.
//!
//! # Python and Rust side by side
//!
//! asyncore's `http_client`:
//!
//! ```python
//! class http_client(asyncore.dispatcher):
//!     def __init__(self, host, path):
//!         asyncore.dispatcher.__init__(self)
//!         self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
//!         self.connect((host, 80))
//!         self.buffer = bytes('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (path, host), 'ascii')
//!
//!     def handle_connect(self):
//!         pass
//!
//!     def handle_close(self):
//!         self.close()
//!
//!     def handle_read(self):
//!         print(self.recv(8192))
//!
//!     def writable(self):
//!         return (len(self.buffer) > 0)
//!
//!     def handle_write(self):
//!         sent = self.send(self.buffer)
//!         self.buffer = self.buffer[sent:]
//!
//! client = http_client('www.python.org', '/')
//! asyncore.loop()
//! ```
//!
//! and its Rust twin (it returns at once here: nothing listens on port 9 of
//! the loopback, so the connect is refused and `handle_error` closes it):
//!
//! ```
//! use selectloop::{Context, Dispatcher, Domain, Handler, Loop, Map, Type};
//! use std::io;
//! use std::net::SocketAddr;
//!
//! struct HttpClient {
//!     buffer: Vec<u8>,
//! }
//!
//! impl Handler for HttpClient {
//!     fn handle_connect(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
//!         Ok(())
//!     }
//!     fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
//!         ch.close();
//!         Ok(())
//!     }
//!     fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
//!         let mut data = [0u8; 8192];
//!         let n = ch.recv(&mut data)?;
//!         print!("{}", String::from_utf8_lossy(&data[..n]));
//!         Ok(())
//!     }
//!     fn writable(&mut self, _ch: &Dispatcher) -> bool {
//!         !self.buffer.is_empty()
//!     }
//!     fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
//!         let sent = ch.send(&self.buffer)?;
//!         self.buffer.drain(..sent);
//!         Ok(())
//!     }
//! }
//!
//! let host = "127.0.0.1";
//! let mut ch = Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?;
//! ch.connect(SocketAddr::from(([127, 0, 0, 1], 9)))?;
//! let buffer = format!("GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").into_bytes();
//! let mut map = Map::new();
//! map.add(ch, HttpClient { buffer });
//! Loop::new().run(&mut map)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Watching the loop
//!
//! At `log`'s trace level (target `selectloop`), each iteration says what it
//! asked of the kernel and what came back, in the syscall's own terms, then
//! which handler ran for each ready fd. With `RUST_LOG=selectloop=trace` (or
//! `--trace` on every example) an echo connection reads:
//!
//! ```text
//! select(readfds={3}, writefds={}, exceptfds={3}, timeout=none (block))
//! select -> 1 ready: readfds={3}, writefds={}, exceptfds={}
//! fd 3: readable -> handle_accept
//! select(readfds={3, 4}, writefds={}, exceptfds={3, 4}, timeout=none (block))
//! select -> 1 ready: readfds={4}, writefds={}, exceptfds={}
//! fd 4: readable -> handle_read
//! ```
//!
//! and on poll:
//!
//! ```text
//! poll(nfds=2, timeout=none (block))
//!   pollfd fd=3 events=POLLIN|POLLPRI
//!   pollfd fd=4 events=POLLIN|POLLPRI
//! poll -> 1 ready
//!   pollfd fd=4 revents=POLLIN
//! fd 4: POLLIN -> handle_read
//! fd 4: peer closed -> handle_close
//! ```
//!
//! The lines, one fact each:
//!
//! | line | meaning |
//! |---|---|
//! | `select(readfds={..}, writefds={..}, exceptfds={..}, timeout=T)` | the sets passed to select(2) |
//! | `select -> N ready: readfds={..}, writefds={..}, exceptfds={..}` | what select(2) returned |
//! | `poll(nfds=N, timeout=T)` then `  pollfd fd=F events=E` | the array passed to poll(2) |
//! | `poll -> N ready` then `  pollfd fd=F revents=R` | the entries with events |
//! | `fd F: CAUSE -> handle_X` | the handler that ran, and why (`readable`, `writable`, `exceptional` on select; `POLLIN`, `POLLOUT`, `POLLPRI`, `POLLHUP`, `POLLERR` on poll; `peer closed` after `recv` returned 0) |
//! | `fd F: event for a channel closed earlier in this iteration, dropped` | a stale event was not delivered |
//!
//! With trace logging off, none of this costs more than one check of the log
//! level per iteration.
//!
//! # asyncore names, and where they are here
//!
//! | Python | here |
//! |---|---|
//! | `asyncore.loop(timeout, use_poll, map, count)` | `Loop::new().timeout(t).use_poll(b).count(n).run(&mut map)` ([`Loop`]) |
//! | `asyncore.poll(timeout, map)` / `asyncore.poll2(...)` | [`poll`] / [`poll2`] |
//! | `asyncore.socket_map`, `map=` | [`Map`] (no global: you own it) |
//! | `asyncore.close_all(map)` | [`Map::close_all`] |
//! | `raise asyncore.ExitNow` | [`Context::exit`] |
//! | `class X(asyncore.dispatcher)` | `impl Handler for X` + a [`Dispatcher`] |
//! | `self.create_socket(family, type)` | [`Dispatcher::create_socket`] |
//! | `dispatcher(sock)` | [`Dispatcher::from_socket`]; in `handle_accepted`, [`Dispatcher::from_accepted`] |
//! | `set_reuse_addr`, `bind`, `listen`, `connect`, `accept`, `send`, `recv`, `close` | the same names on [`Dispatcher`] |
//! | `sendto`, `recvfrom` (datagram sockets) | [`Dispatcher::sendto`], [`Dispatcher::recvfrom`] |
//! | `self.socket.recv(n, socket.MSG_OOB)` in `handle_expt` | [`Dispatcher::recv_oob`] |
//! | `connected`, `accepting`, `connecting`, `addr` | [`Dispatcher::connected`], ... |
//! | `readable`, `writable`, `handle_read`, `handle_write`, `handle_connect`, `handle_accept`, `handle_accepted`, `handle_expt`, `handle_close`, `handle_error` | the same names on [`Handler`] |
//! | `dispatcher_with_send` | [`DispatcherWithSend`] (`impl Handler<DispatcherWithSend> for X`) |
//! | `file_wrapper`, `file_dispatcher` | [`FileWrapper`], [`Dispatcher::file_dispatcher`] |
//! | `asynchat.async_chat` | [`AsyncChat`] (`impl AsyncChatHandler for X`, registered with `map.add(AsyncChat::new(d), X)`) |
//! | `collect_incoming_data`, `found_terminator` | the same names on [`AsyncChatHandler`] (the default `collect_incoming_data` accumulates for [`AsyncChat::take_incoming`]) |
//! | `set_terminator(b"\r\n")`, `set_terminator(n)`, `set_terminator(None)`, `get_terminator` | [`AsyncChat::set_terminator`] with a [`Terminator`] (`b"\r\n"`, `n: usize`, `Terminator::None`), [`AsyncChat::get_terminator`] |
//! | `push`, `push_with_producer`, `close_when_done`, `discard_buffers`, `initiate_send` | the same names on [`AsyncChat`] |
//! | `ac_in_buffer_size`, `ac_out_buffer_size` | [`AsyncChat::set_ac_in_buffer_size`], [`AsyncChat::set_ac_out_buffer_size`] (and getters) |
//! | (none: asynchat lets a line grow without bound) | [`AsyncChat::set_max_incoming`], [`IncomingTooLong`] |
//! | (none: asynchat queues output without bound) | [`AsyncChat::set_output_limit`], [`AsyncChat::is_full`], [`AsyncChat::queued_heap`] |
//! | producer (`more()`), `asynchat.simple_producer` | [`Producer`], [`SimpleProducer`] |
//! | `asynchat.find_prefix_at_end` | [`find_prefix_at_end`] |
//! | `log_info(msg, type)` | the `log` crate: `log::info!`, `log::warn!` (route it where you like) |
//! | (none: a reset reads as a clean end of file) | [`Dispatcher::close_reason`], [`CloseReason`], [`Dispatcher::was_reset`] |
//! | `self.socket.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)` | [`Dispatcher::set_nodelay`] |
//! | (none: `close` with input unread sends a reset) | [`Dispatcher::linger_close`], used by `close_when_done` |
//! | `fileno()` | [`Dispatcher::fileno`]; `AsFd`/`AsRawFd` on [`Dispatcher`], [`DispatcherWithSend`], [`AsyncChat`], [`FileWrapper`] |
//! | `recv`/`send` as a file object | `io::Read`/`io::Write`: `read` is `recv`; `write` is `send`, and queues on the buffered types; `FileWrapper::from(OwnedFd)` takes an fd without a `dup` |
//! | `repr(dispatcher)` | `format!("{:?}", dispatcher)`: `<Dispatcher listening 127.0.0.1:8080 fd=3>` |
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

mod accept_pause;
mod async_chat;
mod channel;
mod context;
mod deadline;
mod dispatcher;
mod dispatcher_with_send;
pub mod event_loop;
mod file_dispatcher;
mod handler;
mod map;
mod output_queue;
mod producer;
pub mod readwrite;
pub mod sys;
mod timer;
mod timers;

pub use accept_pause::is_fd_shortage;
pub use async_chat::{
    find_prefix_at_end, AsyncChat, AsyncChatHandler, IncomingTooLong, Terminator,
    DEFAULT_AC_IN_BUFFER_SIZE, DEFAULT_AC_OUT_BUFFER_SIZE, DEFAULT_MAX_INCOMING,
};
pub use channel::{Channel, IntoChannel};
pub use context::Context;
pub use dispatcher::{
    is_disconnected, CloseReason, Dispatcher, DisplayAddr, DISCONNECTED, LINGER_BYTES, LINGER_TIME,
};
pub use dispatcher_with_send::{DispatcherWithSend, DEFAULT_OUTPUT_LIMIT, SEND_SLICE};
pub use event_loop::{poll, poll2, Control, Loop, Stop};
pub use file_dispatcher::FileWrapper;
pub use handler::{DispatcherType, Handler, ACCEPT_BATCH};
pub use map::{Map, Token};
pub use producer::{Producer, SimpleProducer};
pub use socket2::{Domain, SockAddr, Socket, Type};
pub use timer::Timer;

/// The code blocks of README.md, compiled as doctests so the README's
/// example cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
