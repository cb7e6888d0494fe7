//! The loop's view of a channel: a dispatcher and its handler, type-erased
//! so one map holds every kind.
//!
//! Users never see this: they implement [`Handler`] (or
//! [`AsyncChatHandler`](crate::AsyncChatHandler)) and register it with a
//! dispatcher; [`Map::add`](crate::Map::add) boxes the pair as an `Entry`.
//! The event *routing* (a read event on a listener is an accept, the first
//! event of a connecting socket completes the connect, errors that mean
//! "peer gone" become `handle_close`) is done once, by the loop's event
//! rules, on top of these hooks.

use crate::backend::Interest;
use crate::dispatcher::Dispatcher;
use crate::event_loop::rules::{self, Event, Outcome};
use crate::event_loop::Context;
use crate::handler::{DispatcherType, Handler};
use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::RawFd;

/// When the loop asks a handler's [`readable`](Handler::readable) and
/// [`writable`](Handler::writable) (set with [`Handler::PREDICATES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predicates {
    /// asyncore's rule, the default: both are asked on every iteration, so
    /// they may depend on anything (the time, other channels, shared
    /// state). The loop's cost per iteration grows with the number of such
    /// channels.
    EveryIteration,
    /// The answers depend only on this channel's own dispatcher and handler
    /// (true of the defaults of every dispatcher type: a buffered channel
    /// wants to write exactly while it has output queued). They are asked
    /// when the channel is added, after each of its own events, and after
    /// it is reached through [`Context::get_mut`](crate::Context::get_mut)
    /// and friends or named in [`Context::update_interest`](crate::Context::update_interest).
    /// An idle channel then costs nothing per iteration: with the epoll
    /// backend, a loop with thousands of idle connections costs in
    /// proportion to the active ones. A connecting socket, and a listener
    /// whose accepts are paused for lack of fds, are asked every iteration
    /// in any case (their wishes change with time).
    AfterOwnEvents,
}

/// One entry of the map: a dispatcher, its handler, and the hooks the loop
/// calls on them.
pub(crate) trait Channel: 'static {
    fn dispatcher(&self) -> &Dispatcher;
    fn dispatcher_mut(&mut self) -> &mut Dispatcher;
    /// When to ask `readable`/`writable`.
    fn predicates(&self) -> Predicates;
    /// `readable()` and `writable()`, asked together (one call).
    fn wishes(&mut self) -> (bool, bool);
    fn handle_accept(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_connect(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_read(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_write(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_expt(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_close(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_timeout(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_shutdown(&mut self, cx: &mut Context<'_>) -> io::Result<()>;
    fn handle_error(&mut self, err: io::Error, cx: &mut Context<'_>);
    /// Delivers one event through the event rules
    /// ([`rules::on_event`](crate::event_loop::rules::on_event)),
    /// instantiated for this entry's types: the loop's one virtual call per
    /// event.
    fn on_event(
        &mut self,
        fd: RawFd,
        event: Event,
        cx: &mut Context<'_>,
        registered: Option<(Interest, RawFd)>,
        removals: u64,
    ) -> Outcome;
    /// What the channel is, for the trace (`listener 127.0.0.1:8080`).
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// The entry itself, for typed handles to downcast to `Entry<D, H>`.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// The map entry for a dispatcher type `D` and its handler `H`.
pub(crate) struct Entry<D, H> {
    pub(crate) ch: D,
    pub(crate) handler: H,
}

impl<D: DispatcherType, H: Handler<D>> Channel for Entry<D, H> {
    #[inline]
    fn dispatcher(&self) -> &Dispatcher {
        self.ch.dispatcher()
    }
    #[inline]
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        self.ch.dispatcher_mut()
    }
    fn predicates(&self) -> Predicates {
        H::PREDICATES
    }
    #[inline]
    fn wishes(&mut self) -> (bool, bool) {
        let read = self.handler.readable(&self.ch);
        (read, self.handler.writable(&self.ch))
    }
    fn handle_accept(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_accept(&mut self.ch, cx)
    }
    fn handle_connect(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_connect(&mut self.ch, cx)
    }
    fn handle_read(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_read(&mut self.ch, cx)
    }
    fn handle_write(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_write(&mut self.ch, cx)
    }
    fn handle_expt(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_expt(&mut self.ch, cx)
    }
    fn handle_close(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_close(&mut self.ch, cx)
    }
    fn handle_timeout(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_timeout(&mut self.ch, cx)
    }
    fn handle_shutdown(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.handler.handle_shutdown(&mut self.ch, cx)
    }
    fn handle_error(&mut self, err: io::Error, cx: &mut Context<'_>) {
        self.handler.handle_error(&mut self.ch, err, cx)
    }
    fn on_event(
        &mut self,
        fd: RawFd,
        event: Event,
        cx: &mut Context<'_>,
        registered: Option<(Interest, RawFd)>,
        removals: u64,
    ) -> Outcome {
        rules::on_event(self, fd, event, cx, registered, removals)
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ch.describe(f)
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Boxes a dispatcher and its handler as a map entry.
pub(crate) fn entry<D: DispatcherType, H: Handler<D>>(ch: D, handler: H) -> Box<dyn Channel> {
    Box::new(Entry { ch, handler })
}

/// The dispatcher and handler of a boxed entry, if it is an `Entry<D, H>`.
pub(crate) fn downcast<D: DispatcherType, H: Handler<D>>(
    ch: &mut dyn Channel,
) -> Option<(&mut D, &mut H)> {
    let e = ch.as_any_mut().downcast_mut::<Entry<D, H>>()?;
    Some((&mut e.ch, &mut e.handler))
}
