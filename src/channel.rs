//! The loop's view of a channel: what asyncore's `readwrite` and `poll`
//! call on the objects of the map.
//!
//! Most code never implements [`Channel`]: it implements
//! [`Handler`](crate::Handler) (or [`AsyncChatHandler`](crate::AsyncChatHandler))
//! and registers it with a dispatcher, and the crate provides the `Channel`.
//! Implement it directly only to build a new kind of dispatcher.

use crate::context::Context;
use crate::dispatcher::Dispatcher;
use std::any::Any;
use std::io;

/// One entry of the [`Map`](crate::Map): a dispatcher and the hooks the loop
/// calls on it. The event *routing* (a read event on a listener is an
/// accept, the first event of a connecting socket completes the connect,
/// errors that mean "peer gone" become `handle_close`) is done once, by the
/// loop, on top of these hooks.
pub trait Channel: 'static {
    /// The socket half.
    fn dispatcher(&self) -> &Dispatcher;
    /// The socket half, mutably.
    fn dispatcher_mut(&mut self) -> &mut Dispatcher;
    /// Asked every iteration: put the fd in the read set / ask for `POLLIN`?
    fn readable(&mut self) -> bool;
    /// Asked every iteration: put the fd in the write set / ask for `POLLOUT`?
    fn writable(&mut self) -> bool;
    /// A connection is waiting on this listening socket.
    fn handle_accept(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// A non-blocking connect has completed.
    fn handle_connect(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// Data (or EOF) is ready to read.
    fn handle_read(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// The socket can be written without blocking.
    fn handle_write(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// Out-of-band ("priority") data arrived.
    fn handle_expt(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// The peer closed, or the connection broke.
    fn handle_close(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// The channel's deadline passed.
    fn handle_timeout(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// The loop is shutting down gracefully.
    fn handle_shutdown(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    /// A hook returned an error that does not mean "peer gone".
    fn handle_error(&mut self, err: io::Error, cx: &mut Context<'_>);
    /// The dispatcher type (`Dispatcher`, `DispatcherWithSend`, `AsyncChat`),
    /// for [`Context::channel_mut`](crate::Context::channel_mut).
    fn dispatcher_any(&mut self) -> &mut dyn Any;
    /// The user's handler, for [`Context::handler_mut`](crate::Context::handler_mut).
    fn handler_any(&mut self) -> &mut dyn Any;
}

/// A dispatcher type that can be registered together with a handler `H`:
/// [`Map::add`](crate::Map::add) and [`Context::add`](crate::Context::add)
/// take any `C: IntoChannel<H>`.
///
/// Implemented for every [`DispatcherType`](crate::DispatcherType) `D` with
/// a [`Handler<D>`](crate::Handler), and so for
/// [`AsyncChat`](crate::AsyncChat) with an
/// [`AsyncChatHandler`](crate::AsyncChatHandler) (every `AsyncChatHandler`
/// is a `Handler<AsyncChat>`).
pub trait IntoChannel<H> {
    /// Boxes the pair as a map entry.
    fn into_channel(self, handler: H) -> Box<dyn Channel>;
}
