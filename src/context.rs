//! What a handler can do to the rest of the loop while it runs.

use crate::channel::IntoChannel;
use crate::map::{Slots, Token};

/// Handed to every handler method: the way to add channels (a listener
/// accepting), close other channels (a forwarder closing its peer), reach
/// them (a chat server pushing a line to every user), and stop the loop.
///
/// The running channel itself is reached through the `ch` argument of the
/// handler method, not through the context.
pub struct Context<'a> {
    slots: &'a mut Slots,
    current: Option<Token>,
}

impl<'a> Context<'a> {
    pub(crate) fn new(slots: &'a mut Slots, current: Option<Token>) -> Self {
        Context { slots, current }
    }

    /// The token of the channel whose handler is running.
    pub fn token(&self) -> Option<Token> {
        self.current
    }

    /// Registers a new channel (asyncore: constructing a dispatcher adds it
    /// to the map). It takes part from the next iteration on; events of the
    /// current iteration never reach it, even if it got the fd number of a
    /// channel that just closed.
    pub fn add<C: IntoChannel<H>, H>(&mut self, ch: C, handler: H) -> Token {
        self.slots.insert(ch.into_channel(handler))
    }

    /// Closes channel `token` and removes it from the map at once, with no
    /// `handle_close` (Python: `self.peer.close()`). Its pending events of
    /// this iteration are dropped. Closing the running channel's own token
    /// closes it when the handler returns. Returns whether it was there.
    pub fn close(&mut self, token: Token) -> bool {
        self.slots.remove(token, self.current)
    }

    /// Whether `token` names a live channel.
    pub fn contains(&self, token: Token) -> bool {
        self.slots.contains(token)
    }

    /// Another channel's dispatcher as type `D`; `None` for a stale token, a
    /// type mismatch, or the running channel (use the handler's `ch`).
    ///
    /// Closing it through this reference (`.close()`) works like
    /// [`close`](Self::close): it gets no more events and leaves the map,
    /// though only when the loop next looks at it; `cx.close(token)` removes
    /// it at once.
    pub fn channel_mut<D: 'static>(&mut self, token: Token) -> Option<&mut D> {
        self.slots.get_mut(token)?.dispatcher_any().downcast_mut()
    }

    /// Another channel's handler as type `H`; `None` for a stale token, a
    /// type mismatch, or the running channel (use `self`).
    pub fn handler_mut<H: 'static>(&mut self, token: Token) -> Option<&mut H> {
        self.slots.get_mut(token)?.handler_any().downcast_mut()
    }

    /// The running channel was closed through its token, or the loop is
    /// exiting: no more events for it in this iteration.
    pub(crate) fn stopping(&self) -> bool {
        self.slots.exit || self.slots.close_busy
    }

    /// Starts a graceful shutdown (a daemon's SIGTERM): from the next
    /// iteration, every channel's [`handle_shutdown`](crate::Handler::handle_shutdown)
    /// runs — listeners stop accepting and close, buffered channels deliver
    /// everything queued and then close, plain ones close — and the loop
    /// goes on until the map is empty or `grace` has passed, when what is
    /// left is closed. [`Loop::run`](crate::Loop::run) then returns
    /// [`Stop::Shutdown`](crate::Stop::Shutdown).
    pub fn shutdown(&mut self, grace: std::time::Duration) {
        self.slots.request_shutdown(grace);
    }

    /// Stops the loop after the running handler returns (asyncore's
    /// `raise ExitNow`). The rest of this iteration's events are not
    /// delivered; the map keeps its channels.
    pub fn exit(&mut self) {
        self.slots.exit = true;
    }
}
