//! Layer 4: the event sources a daemon needs besides sockets, each a
//! channel of the same loop, in the same handler style.
//!
//! | source | dispatcher type | handler trait | what it delivers |
//! |---|---|---|---|
//! | [`signals`] | [`Signals`] | [`SignalHandler`] | `handle_signal(signal)` for each signal raised (SIGTERM, SIGHUP, ...) |
//! | [wake-ups](waker) | [`Wakeup`] (woken by [`Waker`]) | [`WakeHandler`] | `handle_wake()` once per batch of wake-ups from other threads |
//! | [messages](waker) | [`MessageChannel<T>`] (fed by [`Sender<T>`]) | [`MessageHandler<T>`] | `handle_message(msg)` for each message from other threads |
//! | [child processes](child) | [`ChildProcess::spawn`] (four channels) | [`ChildHandler`] | `handle_output`, `handle_eof` per pipe, then `handle_exit(status)` |
//!
//! Like [`AsyncChat`](crate::AsyncChat) with its
//! [`AsyncChatHandler`](crate::AsyncChatHandler), each dispatcher type
//! pairs with a handler trait of its own, and every implementation of that
//! trait is a [`Handler`] of the type, so it registers as
//! any channel does: `map.add(Signals::new(&[libc::SIGTERM])?, handler)`.
//! Under the hood each is a file dispatcher over an eventfd (Linux,
//! Android, FreeBSD) or a pipe, made readable by a signal handler, another
//! thread, or `SIGCHLD`: the loop itself is not changed by any of them, and
//! they work the same on select(2), poll(2) and epoll(7).

pub mod child;
pub mod signals;
pub mod waker;

pub use child::{ChildHandler, ChildProcess, ChildStdin, ChildStream};
pub use signals::{Raised, SignalHandler, Signals};
pub use waker::{
    message_channel, MessageChannel, MessageHandler, SendError, Sender, WakeHandler, Waker, Wakeup,
};

use crate::handler::{DispatcherType, Handler};
use crate::map::{Handle, Map};
use crate::Context;

/// Where new channels can be registered: a [`Map`] before the loop runs,
/// or the [`Context`] inside a handler. Sources that register several
/// channels at once ([`ChildProcess::spawn`]) take either.
pub trait AddChannel {
    /// Registers `ch` with `handler` ([`Map::add`] / [`Context::add`]).
    fn add_channel<D: DispatcherType, H: Handler<D>>(&mut self, ch: D, handler: H) -> Handle<D, H>;
}

impl AddChannel for Map {
    fn add_channel<D: DispatcherType, H: Handler<D>>(&mut self, ch: D, handler: H) -> Handle<D, H> {
        self.add(ch, handler)
    }
}

impl AddChannel for Context<'_> {
    fn add_channel<D: DispatcherType, H: Handler<D>>(&mut self, ch: D, handler: H) -> Handle<D, H> {
        self.add(ch, handler)
    }
}
