//! Python's `asyncore` and `asynchat`, reborn in Rust: a small, exact event
//! loop over the raw `select(2)`, `poll(2)` and `epoll(7)` syscalls.
//!
//! If you know asyncore, you know this crate: a **map** of channels, a
//! **loop** that asks each channel whether it is `readable()` and
//! `writable()`, waits in select(2) or poll(2), and calls `handle_read`,
//! `handle_write`, `handle_accept`, `handle_connect`, `handle_close`, ... on
//! the channels that are ready. The names are asyncore's wherever a Python
//! user would look for them (the table at the end maps them all).
//!
//! If you do not know asyncore, or select(2) and poll(2), start with
//! **[the course](guide)**: fifteen short chapters, from "why an event loop"
//! and a server written on the bare syscalls, through every example, to the
//! classic mistakes (each one run and measured) and exercises with checkers.
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
//! # The layers
//!
//! ```text
//!  layer 4  channel types   dispatcher_with_send, async_chat/, file_dispatcher, timer, sources/
//!              │            (buffered output, terminators, timers, signals, wake-ups, children)
//!  layer 3  the loop        event_loop/: Loop, the one iteration (mod.rs), the event rules
//!              │            (rules.rs: where a POLLHUP goes), Context, the timer queue
//!  layer 2  map, backends   map.rs: the slab, typed handles, a change log
//!              │            backend/: select.rs, poll.rs, epoll.rs behind one interface,
//!              │            readiness.rs (what a backend reports, in its own words)
//!  layer 1  syscalls        sys/: select, poll, epoll, timeouts, signals, wake fds (all the unsafe)
//! ```
//!
//! Each layer uses only the ones below it, plus one shared vocabulary that
//! every layer speaks: [`Dispatcher`] (the socket half of a channel,
//! `dispatcher.rs`, with its deadline, `deadline.rs`), [`Handler`] (its
//! events, `handler.rs`), the loop's [`Context`], which handlers receive,
//! and `channel.rs`. The map stores each channel as a type-erased pair of
//! dispatcher and handler (`channel.rs`), and that pair is where the loop's
//! event rules are instantiated for its concrete types: the one place
//! where the map's slots and the loop's rules meet. So the loop makes one
//! virtual call per event, and every `handle_*`, `readable()` and
//! `writable()` behind it is a direct call the compiler inlines. Each layer is usable alone: the raw servers use `sys` only; a
//! [`Map`] and a [`Loop`] run plain [`Dispatcher`]s.
//!
//! | layer | module | asyncore | in the course |
//! |---|---|---|---|
//! | syscall wrappers | [`sys`]: [`sys::select`], [`sys::poll`], [`sys::Epoll`], [`sys::FdSet`], [`sys::PollFd`] | `select.select`, `select.poll`, `select.epoll` | [1](guide::select_and_poll), [2](guide::raw_servers) |
//! | map and backends | [`Map`] + [`Handle`], [`Backend`] | `socket_map` | [1](guide::select_and_poll) |
//! | the loop | [`Loop`], [`Context`], [`Stop`] | `loop`, `poll`, `poll2`, `readwrite` | [3](guide::event_rules), [4](guide::reading_the_trace) |
//! | dispatchers | [`Dispatcher`] + [`Handler`], [`DispatcherWithSend`], [`Dispatcher::file_dispatcher`] + [`FileWrapper`], [`Timer`] | `dispatcher`, `dispatcher_with_send`, `file_dispatcher`, `file_wrapper` | [5](guide::echo_server), [6](guide::http_client), [7](guide::port_forwarder), [9](guide::file_cat) |
//! | conversations | [`AsyncChat`] + [`AsyncChatHandler`], [`Terminator`], [`Producer`], [`SimpleProducer`] | `asynchat.async_chat`, `simple_producer` | [8](guide::chat_server) |
//! | daemon sources | [`sources`]: [`sources::Signals`] + [`sources::SignalHandler`], [`sources::Wakeup`] + [`sources::Waker`], [`sources::MessageChannel`] + [`sources::Sender`], [`sources::ChildProcess`] + [`sources::ChildHandler`] | (none) | [15](guide::daemon) |
//!
//! # Watching the loop
//!
//! Every example takes `--trace`, and any program using the crate gets the
//! same lines with `RUST_LOG=selectloop=trace` (log target `selectloop`,
//! level trace): each iteration says what it asked of the kernel and what
//! came back, in the syscall's own terms, then which handler ran for each
//! ready fd, and why.
//!
//! ```text
//! [+0.401633s] iteration 2: poll(nfds=3, timeout=none (block))
//!   pollfd fd=5 events=POLLIN|POLLPRI
//!   pollfd fd=4 events=POLLIN|POLLPRI
//!   pollfd fd=6 events=POLLIN|POLLPRI
//! [+0.501677s] poll -> 1 ready
//!   pollfd fd=6 revents=POLLIN
//! fd 6: POLLIN -> handle_read
//! ```
//!
//! [Reading the trace](guide::reading_the_trace) explains every line the
//! crate can print, and draws a recorded trace as a picture of the loop (the
//! `trace_picture` example). With trace logging off, none of this costs more
//! than one check of the log level at each step that would print a line.
//!
//! # asyncore names, and where they are here
//!
//! | Python | here |
//! |---|---|
//! | `asyncore.loop(timeout, use_poll, map, count)` | `Loop::new().timeout(t).use_poll(b).count(n).run(&mut map)` ([`Loop`]) |
//! | `asyncore.poll(timeout, map)` / `asyncore.poll2(...)` | one iteration: [`Loop::iterate`] on `Loop::new().timeout(t)` / `.use_poll(true)` (asyncore's `poll` waits in select(2), `poll2` in poll(2); here the backend is named: [`Backend::Select`], [`Backend::Poll`], [`Backend::Epoll`]) |
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
//! | (none in asyncore: `signal.signal` + a self-pipe by hand) | [`sources::Signals`] + [`sources::SignalHandler`] (`handle_signal`) |
//! | (none in asyncore: a pipe written from another thread) | [`sources::Wakeup`] + [`sources::Waker`] (`handle_wake`) |
//! | (none in asyncore: a `queue.Queue` and a wake-up pipe) | [`sources::message_channel`]: [`sources::Sender`] + [`sources::MessageChannel`] (`handle_message`) |
//! | (none in asyncore: `subprocess` pipes in `file_dispatcher`s, `os.waitpid`) | [`sources::ChildProcess::spawn`] + [`sources::ChildHandler`] (`handle_output`, `handle_eof`, `handle_exit`) |
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

// Layer 1: syscalls. Layer 2: the map and the backends. Layer 3: the loop.
// Layer 4: dispatchers and event sources. Imports point down this list only.
pub mod sys;

mod backend;
mod map;

mod event_loop;

mod accept_pause;
mod async_chat;
mod channel;
mod deadline;
mod dispatcher;
mod dispatcher_with_send;
mod file_dispatcher;
pub mod guide;
mod handler;
mod output_queue;
mod producer;
pub mod sources;
mod timer;

pub use accept_pause::is_fd_shortage;
pub use async_chat::{
    find_prefix_at_end, AsyncChat, AsyncChatHandler, IncomingTooLong, Terminator,
    DEFAULT_AC_IN_BUFFER_SIZE, DEFAULT_AC_OUT_BUFFER_SIZE, DEFAULT_MAX_INCOMING,
};
pub use channel::Predicates;
pub use dispatcher::{
    is_disconnected, CloseReason, Dispatcher, DisplayAddr, DISCONNECTED, LINGER_BYTES, LINGER_TIME,
};
pub use dispatcher_with_send::{DispatcherWithSend, DEFAULT_OUTPUT_LIMIT, SEND_SLICE};
pub use event_loop::{Backend, Context, Control, Loop, Stop};
pub use file_dispatcher::FileWrapper;
pub use handler::{DispatcherType, Handler, ACCEPT_BATCH};
pub use map::{Handle, Map, Token};
pub use producer::{Producer, SimpleProducer};
pub use socket2::{Domain, SockAddr, Socket, Type};
pub use timer::Timer;

/// The code blocks of README.md, compiled as doctests so the README's
/// example cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
