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
    /// Asks `readable()` and `writable()` and records the answer, with the
    /// dispatcher's state, as what the channel [`Wants`].
    fn wants(&mut self) -> Wants;
    /// After one of its own events: whether the channel now wants something
    /// else than when last asked (its interest, fd or state), or has a
    /// deadline the loop's timer queue does not know yet.
    fn wants_changed(&mut self) -> bool;
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
    /// ([`rules::on_event`]),
    /// instantiated for this entry's types: the loop's one virtual call per
    /// event.
    fn on_event(
        &mut self,
        fd: RawFd,
        event: Event,
        cx: &mut Context<'_>,
        check: bool,
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
    /// What it wanted when last asked.
    seen: Wants,
}

/// What a channel wants of the loop, as its handler and dispatcher say it:
/// the fd (-1: none), the handler's `readable()` and `writable()` answers,
/// the connection state, whether an accept pause is on, and whether the
/// dispatcher is one no loop has looked at yet, packed in one word. The state rules (a listener never writes, a connecting socket
/// always does) are applied by [`interest`](Self::interest).
///
/// Recorded on the entry whenever the loop asks the channel's predicates,
/// so the check after each of its own events
/// ([`Predicates::AfterOwnEvents`]) is one comparison, without a lookup in
/// the loop's tables. Any difference counts, even one the state rules hide:
/// the loop then asks again, and finds the same interest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wants(u64);

impl Wants {
    const READ: u64 = 1 << 32;
    const WRITE: u64 = 1 << 33;
    const PAUSED: u64 = 1 << 34;
    const STATE_SHIFT: u32 = 35;
    /// A dispatcher no loop has looked at yet: one put in place of the
    /// registered one (even at the same fd number).
    const FRESH: u64 = 1 << 44;

    /// Never asked yet (matches no real answer).
    const UNSEEN: Wants = Wants(u64::MAX);

    /// What a channel in state `d` whose `readable()`/`writable()` said
    /// `read`/`write` wants: the answers as given, the fd, the connection
    /// state and the accept pause, packed (the state rules are applied by
    /// [`interest`](Self::interest); any change of the state counts).
    #[inline]
    pub(crate) fn of(d: &Dispatcher, read: bool, write: bool) -> Wants {
        Wants(
            u64::from(d.fileno().unwrap_or(-1) as u32)
                | if read { Self::READ } else { 0 }
                | if write { Self::WRITE } else { 0 }
                | if d.is_accept_paused() {
                    Self::PAUSED
                } else {
                    0
                }
                | if d.is_fresh() { Self::FRESH } else { 0 }
                | u64::from(d.state_code()) << Self::STATE_SHIFT,
        )
    }

    /// The interest to register, after the state rules (a listener never
    /// writes, a connecting socket always does), before any accept pause.
    #[inline]
    pub(crate) fn interest(self) -> Interest {
        let state = (self.0 >> Self::STATE_SHIFT) as u8;
        Interest {
            read: self.0 & Self::READ != 0,
            write: (self.0 & Self::WRITE != 0 || state == Dispatcher::CONNECTING)
                && state != Dispatcher::ACCEPTING,
        }
    }
}

impl fmt::Debug for Wants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wants")
            .field("fd", &(self.0 as u32 as i32))
            .field("interest", &self.interest())
            .field("paused", &(self.0 & Self::PAUSED != 0))
            .field("fresh", &(self.0 & Self::FRESH != 0))
            .field("state", &((self.0 >> Self::STATE_SHIFT) as u8))
            .finish()
    }
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
    fn wants(&mut self) -> Wants {
        let read = self.handler.readable(&self.ch);
        let write = self.handler.writable(&self.ch);
        self.seen = Wants::of(self.ch.dispatcher(), read, write);
        self.seen
    }
    #[inline]
    fn wants_changed(&mut self) -> bool {
        // Compared, not recorded: a change is recorded when the loop asks
        // again (at the next iteration).
        let read = self.handler.readable(&self.ch);
        let write = self.handler.writable(&self.ch);
        let d = self.ch.dispatcher();
        Wants::of(d, read, write) != self.seen || d.deadline.needs_queueing()
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
        check: bool,
        removals: u64,
    ) -> Outcome {
        rules::on_event(self, fd, event, cx, check, removals)
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
    Box::new(Entry {
        ch,
        handler,
        seen: Wants::UNSEEN,
    })
}

/// The dispatcher and handler of a boxed entry, if it is an `Entry<D, H>`.
pub(crate) fn downcast<D: DispatcherType, H: Handler<D>>(
    ch: &mut dyn Channel,
) -> Option<(&mut D, &mut H)> {
    let e = ch.as_any_mut().downcast_mut::<Entry<D, H>>()?;
    Some((&mut e.ch, &mut e.handler))
}
