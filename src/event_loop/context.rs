//! What a handler can do to the rest of the loop while it runs.

use crate::handler::{DispatcherType, Handler};
use crate::map::{Handle, Map, Token};
use std::time::Duration;

/// Handed to every handler method: the way to add channels (a listener
/// accepting), close other channels (a forwarder closing its peer), reach
/// them (a chat server pushing a line to every user), and stop the loop.
///
/// The running channel itself is reached through the `ch` argument of the
/// handler method (and its handler is `self`), not through the context.
pub struct Context<'a> {
    map: &'a mut Map,
    current: Token,
    exit: &'a mut bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(map: &'a mut Map, current: Token, exit: &'a mut bool) -> Self {
        Context { map, current, exit }
    }

    /// The token of the channel whose handler is running.
    pub fn token(&self) -> Token {
        self.current
    }

    /// The typed handle of the channel whose handler is running, for
    /// others to reach it later (a chat user entering the room): pass the
    /// handler method's `self` and `ch`, which fix the types.
    pub fn handle<D: DispatcherType, H: Handler<D>>(&self, _handler: &H, _ch: &D) -> Handle<D, H> {
        Handle::new(self.current)
    }

    /// Registers a new channel (asyncore: constructing a dispatcher adds it
    /// to the map) and returns its typed handle. It takes part from the
    /// next iteration on; events of the current iteration never reach it,
    /// even if it got the fd number of a channel that just closed.
    pub fn add<D: DispatcherType, H: Handler<D>>(&mut self, ch: D, handler: H) -> Handle<D, H> {
        self.map.add(ch, handler)
    }

    /// Closes channel `token` and removes it from the map at once, with no
    /// `handle_close` (Python: `self.peer.close()`). Its pending events of
    /// this iteration are dropped. Closing the running channel's own token
    /// closes it when the handler returns. Returns whether it was there.
    pub fn close(&mut self, token: impl Into<Token>) -> bool {
        self.map.remove(token.into())
    }

    /// Whether `token` names an open channel (the running one included;
    /// see [`Map::contains`](crate::Map::contains) for one closed a moment
    /// ago).
    pub fn contains(&self, token: impl Into<Token>) -> bool {
        self.map.contains(token)
    }

    /// Another channel's dispatcher and handler together (a forwarder
    /// passing data to its peer, a chat server pushing a line to a user);
    /// `None` once it has closed, and for the running channel (use the
    /// handler's `ch` and `self`). The types come from the handle, so a
    /// mismatch is a compile error.
    ///
    /// Closing it through the returned dispatcher (`.close()`) works like
    /// [`close`](Self::close): it gets no more events and leaves the map
    /// (at the next iteration). The loop asks its `readable`/`writable`
    /// again afterwards.
    pub fn get_mut<D: DispatcherType, H: Handler<D>>(
        &mut self,
        handle: Handle<D, H>,
    ) -> Option<(&mut D, &mut H)> {
        self.map.get_mut(handle)
    }

    /// Another channel's dispatcher (see [`get_mut`](Self::get_mut)).
    pub fn channel_mut<D: DispatcherType, H: Handler<D>>(
        &mut self,
        handle: Handle<D, H>,
    ) -> Option<&mut D> {
        self.map.channel_mut(handle)
    }

    /// Another channel's handler (see [`get_mut`](Self::get_mut)).
    pub fn handler_mut<D: DispatcherType, H: Handler<D>>(
        &mut self,
        handle: Handle<D, H>,
    ) -> Option<&mut H> {
        self.map.handler_mut(handle)
    }

    /// Another channel's socket half, whatever its types (see
    /// [`Map::dispatcher_mut`]); `None` for a closed channel or the running
    /// one.
    pub fn dispatcher_mut(&mut self, token: impl Into<Token>) -> Option<&mut crate::Dispatcher> {
        self.map.dispatcher_mut(token)
    }

    /// Asks the loop to ask channel `token`'s `readable`/`writable` again
    /// (see [`Map::update_interest`]).
    pub fn update_interest(&mut self, token: impl Into<Token>) {
        self.map.update_interest(token)
    }

    /// The running channel was closed through its token, or the loop is
    /// exiting: no more events for it in this iteration.
    pub(crate) fn stopping(&self) -> bool {
        *self.exit || self.map.running_closed()
    }

    /// Starts a graceful shutdown (a daemon's SIGTERM): from the next
    /// iteration, every channel's [`handle_shutdown`](crate::Handler::handle_shutdown)
    /// runs — listeners stop accepting and close, buffered channels deliver
    /// everything queued and then close, plain ones close — and the loop
    /// goes on until the map is empty or `grace` has passed, when what is
    /// left is closed. [`Loop::run`](crate::Loop::run) then returns
    /// [`Stop::Shutdown`](crate::Stop::Shutdown).
    pub fn shutdown(&mut self, grace: Duration) {
        self.map.request_shutdown(grace);
    }

    /// Stops the loop after the running handler returns (asyncore's
    /// `raise ExitNow`). The rest of this iteration's events are not
    /// delivered; the map keeps its channels.
    pub fn exit(&mut self) {
        *self.exit = true;
    }
}
