//! The channel map: asyncore's `socket_map`, a value the caller owns.
//!
//! asyncore keys its map by fd. An fd number alone cannot tell a channel
//! from the one that got the same number after it closed (the kernel hands
//! out the lowest free fd, so reuse within one iteration is the rule, not the
//! exception). The map here is a slab keyed by [`Token`] (slot index +
//! generation): a token names one channel for its whole life and never
//! another, which is how the loop drops stale events instead of delivering
//! them to a newcomer.
//!
//! The map is a plain container: it knows nothing of select, poll or epoll.
//! It keeps a log of what changed (channels added, removed, or reached
//! through [`Map::get_mut`] and friends, whose wishes may have changed) that
//! the loop reads at the start of each iteration to bring the kernel's view
//! up to date.

use crate::channel::{self, Channel};
use crate::dispatcher::Dispatcher;
use crate::handler::{DispatcherType, Handler};
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::RawFd;
use std::time::Duration;

/// The identity of a channel in a [`Map`], valid until that channel closes
/// and never reused for another channel of the same map. Every
/// [`Handle`] has one ([`Handle::token`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    /// The slot this token names.
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    /// The token as one number (epoll's `data` field) and back.
    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.index) << 32) | u64::from(self.generation)
    }

    pub(crate) fn from_u64(v: u64) -> Token {
        Token {
            index: (v >> 32) as u32,
            generation: v as u32,
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.{})", self.index, self.generation)
    }
}

/// A typed handle to a channel: what [`Map::add`] and
/// [`Context::add`](crate::Context::add) return. It knows the channel's
/// dispatcher type `D` and handler type `H`, so reaching the channel
/// ([`Context::get_mut`](crate::Context::get_mut)) is checked at compile
/// time; a handle whose channel has closed yields `None`, never a panic or
/// another channel.
pub struct Handle<D, H> {
    token: Token,
    types: PhantomData<fn() -> (D, H)>,
}

impl<D, H> Handle<D, H> {
    pub(crate) fn new(token: Token) -> Self {
        Handle {
            token,
            types: PhantomData,
        }
    }

    /// The untyped identity of the channel.
    pub fn token(&self) -> Token {
        self.token
    }
}

impl<D, H> Clone for Handle<D, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D, H> Copy for Handle<D, H> {}

impl<D, H> PartialEq for Handle<D, H> {
    fn eq(&self, other: &Self) -> bool {
        self.token == other.token
    }
}

impl<D, H> Eq for Handle<D, H> {}

impl<D, H> std::hash::Hash for Handle<D, H> {
    fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
        self.token.hash(state)
    }
}

impl<D, H> fmt::Debug for Handle<D, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({}.{})", self.token.index, self.token.generation)
    }
}

impl<D, H> From<Handle<D, H>> for Token {
    fn from(h: Handle<D, H>) -> Token {
        h.token
    }
}

/// What happened to a slot since the loop last looked.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    /// A channel was added.
    Added(Token),
    /// A channel was reached from outside its own events: its wishes may
    /// have changed, or it was closed through its dispatcher.
    Touched(Token),
    /// A channel left the map.
    Removed(Token),
}

/// One place of the slab. `ch` holds the channel while it is registered
/// and not running; while one of its handlers runs it is out (`ch` is
/// `None`, `live` stays set), so taking it out and putting it back are one
/// pointer each way.
struct Slot {
    ch: Option<Box<dyn Channel>>,
    generation: u32,
    /// Occupied or running (not vacant).
    live: bool,
    /// Running, and closed through its token meanwhile: dropped when put
    /// back.
    close_on_return: bool,
    /// Its channel was told of the graceful shutdown under way.
    told_shutdown: bool,
    /// Vacant: the next vacant slot (`NONE`: none).
    next_free: u32,
}

const NONE: u32 = u32::MAX;

/// Where a graceful shutdown stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ShutdownState {
    #[default]
    Running,
    /// Asked for, with this grace period; begins at the next iteration.
    Requested(Duration),
    /// Every channel was told; what is left at this instant is closed.
    Draining(std::time::Instant),
    /// The drain ended with the map empty; `Loop::run` reports it
    /// (`Stop::Shutdown`) and resets it. A channel added now is not told.
    Done,
}

/// The fd → channel map (asyncore's `socket_map`), owned by the caller and
/// passed to the loop.
///
/// ```
/// use selectloop::{Dispatcher, Domain, Handler, Loop, Map, Type};
///
/// struct Idle;
/// impl Handler for Idle {}
///
/// let mut map = Map::new();
/// let handle = map.add(Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?, Idle);
/// assert!(map.contains(handle));
/// map.close(handle);
/// assert!(map.is_empty());
/// Loop::new().run(&mut map)?; // returns at once: the map is empty
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Map {
    slots: Vec<Slot>,
    free_head: u32,
    len: usize,
    /// How many channels have left the map; a listener paused on EMFILE
    /// resumes when this changes.
    removals: u64,
    /// How many channels were ever added.
    insertions: u64,
    /// What changed since the loop last looked (drained by the loop).
    changes: Vec<Change>,
    /// A graceful shutdown asked for or under way.
    pub(crate) shutdown: ShutdownState,
    /// The running channel (the one taken out) was closed through its
    /// token: it leaves the map when its handler returns.
    running_closed: bool,
    /// Which map this is, and how many times a loop has read its change
    /// log: a loop that finds another loop read it in between starts over
    /// from the map's contents.
    id: u64,
    drains: u64,
}

impl Map {
    /// An empty map.
    ///
    /// Creating a map also makes sure a write to a closed pipe or socket
    /// cannot kill the process: if `SIGPIPE` still has its default action,
    /// it is set to "ignore" (once per process; Rust programs already start
    /// that way). Sockets are written with `MSG_NOSIGNAL` in any case; this
    /// covers file dispatchers on pipes.
    pub fn new() -> Self {
        crate::sys::ignore_sigpipe_once();
        Map {
            slots: Vec::new(),
            free_head: NONE,
            len: 0,
            removals: 0,
            insertions: 0,
            changes: Vec::new(),
            shutdown: ShutdownState::Running,
            running_closed: false,
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            drains: 0,
        }
    }

    /// Which map this is and how many times its change log was read.
    pub(crate) fn log_stamp(&self) -> (u64, u64) {
        (self.id, self.drains)
    }

    /// Clears the change log after a loop read it; returns the new stamp.
    pub(crate) fn drained(&mut self) -> (u64, u64) {
        self.changes.clear();
        self.drains += 1;
        self.log_stamp()
    }

    /// Registers a dispatcher with its handler (asyncore's `add_channel`);
    /// from the next iteration on the loop asks the handler's `readable` and
    /// `writable` and delivers its events. Returns the channel's typed
    /// handle.
    pub fn add<D: DispatcherType, H: Handler<D>>(&mut self, ch: D, handler: H) -> Handle<D, H> {
        Handle {
            token: self.insert(channel::entry(ch, handler)),
            types: PhantomData,
        }
    }

    fn insert(&mut self, ch: Box<dyn Channel>) -> Token {
        self.len += 1;
        self.insertions += 1;
        if self.shutdown == ShutdownState::Done {
            // The shutdown that emptied the map is over: this one runs.
            self.shutdown = ShutdownState::Running;
        }
        let token = if self.free_head != NONE {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            self.free_head = slot.next_free;
            slot.ch = Some(ch);
            slot.live = true;
            slot.told_shutdown = false;
            Token {
                index,
                generation: slot.generation,
            }
        } else {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                ch: Some(ch),
                generation: 0,
                live: true,
                close_on_return: false,
                told_shutdown: false,
                next_free: NONE,
            });
            Token {
                index,
                generation: 0,
            }
        };
        self.changes.push(Change::Added(token));
        token
    }

    fn slot_mut(&mut self, t: Token) -> Option<&mut Slot> {
        self.slots
            .get_mut(t.index as usize)
            .filter(|s| s.generation == t.generation)
    }

    fn slot(&self, t: Token) -> Option<&Slot> {
        self.slots
            .get(t.index as usize)
            .filter(|s| s.generation == t.generation)
    }

    /// The registered (not running) channel `t`.
    pub(crate) fn entry_mut(&mut self, t: Token) -> Option<&mut (dyn Channel + 'static)> {
        Some(&mut **self.slot_mut(t)?.ch.as_mut()?)
    }

    pub(crate) fn entry(&self, t: Token) -> Option<&(dyn Channel + 'static)> {
        Some(&**self.slot(t)?.ch.as_ref()?)
    }

    /// Takes a channel out to run one of its handlers; the slot stays
    /// reserved (`live`, with no channel in it) so nothing else is inserted
    /// there meanwhile.
    #[inline(always)]
    pub(crate) fn take(&mut self, t: Token) -> Option<Box<dyn Channel>> {
        let ch = self.slot_mut(t)?.ch.take()?;
        self.running_closed = false;
        Some(ch)
    }

    /// Puts a channel back after its handlers ran, or drops it (closing its
    /// fd) if it closed meanwhile (`closed`: its dispatcher is closed).
    /// Returns whether it is still there.
    #[inline(always)]
    pub(crate) fn put_back(&mut self, t: Token, ch: Box<dyn Channel>, closed: bool) -> bool {
        // A busy slot is never vacated (nor its generation moved on) while
        // its channel is out: the index alone finds it.
        let Some(slot) = self.slots.get_mut(t.index as usize) else {
            return false;
        };
        if slot.close_on_return || closed {
            self.vacate(t, ch);
            false
        } else {
            // The slot stayed empty while its channel was out (nothing is
            // inserted into a live slot), so there is no old value to drop:
            // `forget` of that `None` spares the drop check.
            debug_assert!(slot.ch.is_none());
            std::mem::forget(slot.ch.replace(ch));
            true
        }
    }

    /// Frees slot `t`, dropping (closing) its channel.
    fn vacate(&mut self, t: Token, ch: Box<dyn Channel>) {
        let fd = ch.dispatcher().fileno().unwrap_or(-1);
        if fd >= 0 {
            log::trace!("fd {fd}: closed, removed from the map");
        }
        drop(ch); // closes the fd
        let free_head = self.free_head;
        if let Some(slot) = self.slot_mut(t) {
            slot.live = false;
            slot.close_on_return = false;
            slot.next_free = free_head;
            slot.generation = slot.generation.wrapping_add(1);
            self.free_head = t.index;
            self.len -= 1;
            self.removals += 1;
            self.changes.push(Change::Removed(t));
        }
    }

    /// Removes and drops channel `t`. A running one (taken out) is marked, and
    /// dropped when its handler returns. Returns whether it was there.
    pub(crate) fn remove(&mut self, t: Token) -> bool {
        let Some(slot) = self.slot_mut(t) else {
            return false;
        };
        if let Some(ch) = slot.ch.take() {
            self.vacate(t, ch);
            true
        } else if slot.live && !slot.close_on_return {
            // Running: dropped when its handler returns.
            slot.close_on_return = true;
            self.running_closed = true;
            true
        } else {
            false
        }
    }

    /// Whether the running channel (the one last taken out) was closed
    /// through its token meanwhile (it leaves the map when its handler
    /// returns).
    #[inline]
    pub(crate) fn running_closed(&self) -> bool {
        self.running_closed
    }

    /// Records that channel `t` was reached from outside its own events.
    pub(crate) fn touch(&mut self, t: Token) {
        self.changes.push(Change::Touched(t));
    }

    /// The change log, for the loop to read (and clear).
    pub(crate) fn changes(&mut self) -> &mut Vec<Change> {
        &mut self.changes
    }

    /// How many channels have left the map so far.
    pub(crate) fn removals(&self) -> u64 {
        self.removals
    }

    /// The number of slots, live or not (tokens index below this).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The next channel from slot `*from` on that was not told of the
    /// graceful shutdown yet, marked as told now; `*from` moves past it.
    pub(crate) fn next_untold(&mut self, from: &mut usize) -> Option<Token> {
        while let Some(slot) = self.slots.get_mut(*from) {
            let index = *from;
            *from += 1;
            if slot.ch.is_some() && !slot.told_shutdown {
                slot.told_shutdown = true;
                return Some(Token {
                    index: index as u32,
                    generation: slot.generation,
                });
            }
        }
        None
    }

    /// How many channels were ever added to the map.
    pub(crate) fn insertions(&self) -> u64 {
        self.insertions
    }

    /// The token of the channel in slot `index`, if it is registered.
    pub(crate) fn token_at(&self, index: usize) -> Option<Token> {
        let slot = self.slots.get(index)?;
        slot.ch.as_ref().map(|_| Token {
            index: index as u32,
            generation: slot.generation,
        })
    }

    /// Asks for a graceful shutdown; a second request while one is under
    /// way changes nothing.
    pub(crate) fn request_shutdown(&mut self, grace: Duration) {
        if matches!(self.shutdown, ShutdownState::Running | ShutdownState::Done) {
            self.shutdown = ShutdownState::Requested(grace);
        }
    }

    /// Closes a channel and removes it from the map (asyncore's `close()` on
    /// a channel from outside). Its handler gets no `handle_close`. Returns
    /// whether it was there.
    pub fn close(&mut self, token: impl Into<Token>) -> bool {
        self.remove(token.into())
    }

    /// Whether `token` names an open channel in the map. A closed one is
    /// not, though it leaves the map a little later: closed through its
    /// token while its handler runs (`cx.close(cx.token())`), it leaves
    /// when the handler returns; closed through its dispatcher
    /// (`channel_mut(h)?.close()`), at the next iteration. (The running
    /// channel is out of its slot: closed through its own `ch.close()`, it
    /// still counts until its handler returns.)
    pub fn contains(&self, token: impl Into<Token>) -> bool {
        self.slot(token.into()).is_some_and(|s| {
            s.live
                && !s.close_on_return
                && !matches!(&s.ch, Some(ch) if ch.dispatcher().is_closed())
        })
    }

    /// The number of channels.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no channels (the loop stops then).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tokens of all channels, in slot order.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        (0..self.slots.len()).filter_map(|i| self.token_at(i))
    }

    /// The dispatcher and handler of channel `handle`, or `None` once it
    /// has closed. The loop asks its predicates again afterwards (its
    /// wishes may have changed), and a channel closed through the
    /// dispatcher leaves the map at the next iteration.
    pub fn get_mut<D: DispatcherType, H: Handler<D>>(
        &mut self,
        handle: Handle<D, H>,
    ) -> Option<(&mut D, &mut H)> {
        if !self.contains(handle) {
            return None;
        }
        self.touch(handle.token);
        channel::downcast(self.entry_mut(handle.token)?)
    }

    /// The dispatcher of channel `handle` (see [`get_mut`](Self::get_mut)).
    pub fn channel_mut<D: DispatcherType, H: Handler<D>>(
        &mut self,
        handle: Handle<D, H>,
    ) -> Option<&mut D> {
        self.get_mut(handle).map(|(d, _)| d)
    }

    /// The handler of channel `handle` (see [`get_mut`](Self::get_mut)).
    pub fn handler_mut<D: DispatcherType, H: Handler<D>>(
        &mut self,
        handle: Handle<D, H>,
    ) -> Option<&mut H> {
        self.get_mut(handle).map(|(_, h)| h)
    }

    /// The socket half of channel `token`, whatever its types.
    pub fn dispatcher(&self, token: impl Into<Token>) -> Option<&Dispatcher> {
        Some(self.entry(token.into())?.dispatcher())
    }

    /// The socket half of channel `token`, mutably, whatever its types
    /// (closing it there closes the channel at the next iteration; the
    /// loop asks its predicates again afterwards).
    pub fn dispatcher_mut(&mut self, token: impl Into<Token>) -> Option<&mut Dispatcher> {
        let token = token.into();
        if !self.contains(token) {
            return None;
        }
        self.touch(token);
        Some(self.entry_mut(token)?.dispatcher_mut())
    }

    /// The fd of channel `token`.
    pub fn fileno(&self, token: impl Into<Token>) -> Option<RawFd> {
        self.dispatcher(token)?.fileno()
    }

    /// Asks the loop to ask channel `token`'s `readable`/`writable` again
    /// at the next iteration: for a handler with
    /// [`Predicates::AfterOwnEvents`](crate::Predicates::AfterOwnEvents)
    /// whose wishes changed by some other road (Twisted's
    /// `startWriting`). Harmless for any other channel.
    pub fn update_interest(&mut self, token: impl Into<Token>) {
        self.touch(token.into());
    }

    /// Starts a graceful shutdown, as [`Context::shutdown`](crate::Context::shutdown)
    /// does from inside a handler: at the next iteration every channel's
    /// [`handle_shutdown`](crate::Handler::handle_shutdown) runs (listeners
    /// close, buffered channels deliver their queue and then close), and
    /// after `grace` whatever is still open is closed. [`Loop::run`](crate::Loop::run)
    /// then returns [`Stop::Shutdown`](crate::Stop::Shutdown).
    pub fn shutdown(&mut self, grace: Duration) {
        self.request_shutdown(grace);
    }

    /// Closes every channel and empties the map (asyncore's `close_all`).
    /// Handlers get no `handle_close`.
    pub fn close_all(&mut self) {
        for index in 0..self.slots.len() {
            if let Some(t) = self.token_at(index) {
                self.remove(t);
            }
        }
    }
}

impl Default for Map {
    fn default() -> Self {
        Map::new()
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for t in self.tokens() {
            if let Some(ch) = self.entry(t) {
                m.entry(&t, ch.dispatcher());
            }
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dispatcher;
    use std::os::unix::net::UnixStream;

    struct Quiet;
    impl Handler for Quiet {}

    struct Other;
    impl Handler for Other {}

    fn channel() -> Dispatcher {
        Dispatcher::from_socket(UnixStream::pair().unwrap().0).unwrap()
    }

    #[test]
    fn a_token_is_never_reused_for_another_channel() {
        let mut map = Map::new();
        let a = map.add(channel(), Quiet);
        assert!(map.close(a));
        let b = map.add(channel(), Quiet);
        assert_eq!(a.token().index(), b.token().index(), "the slot is reused");
        assert_ne!(a.token(), b.token());
        assert!(!map.contains(a) && map.contains(b));
        assert!(map.get_mut(a).is_none(), "a stale handle yields nothing");
        assert!(!map.close(a), "closing a stale handle does nothing");
        assert!(map.contains(b));
    }

    /// Closed while its handler runs (taken out of its slot), a channel is
    /// no longer `contains`-ed, as one closed from elsewhere is not.
    #[test]
    fn a_running_channel_closed_is_no_longer_contained() {
        let mut map = Map::new();
        let a = map.add(channel(), Quiet);
        let ch = map.take(a.token()).unwrap();
        assert!(map.contains(a), "running, not closed");
        assert!(map.close(a));
        assert!(!map.contains(a), "closed while running");
        assert!(!map.close(a), "closing it again does nothing");
        assert!(!map.put_back(a.token(), ch, false), "dropped on return");
        assert!(map.is_empty());
        // Closed through its dispatcher, another channel is not contained
        // either, though it leaves the map at the next iteration.
        let b = map.add(channel(), Quiet);
        map.channel_mut(b).unwrap().close();
        assert!(!map.contains(b));
        assert!(
            map.channel_mut(b).is_none(),
            "a closed channel yields nothing"
        );
    }

    #[test]
    fn typed_access_reaches_dispatcher_and_handler() {
        let mut map = Map::new();
        let q = map.add(channel(), Quiet);
        let o = map.add(channel(), Other);
        assert!(map.get_mut(q).is_some());
        assert!(map.handler_mut(o).is_some());
        map.channel_mut(q).unwrap().close();
        assert!(map.dispatcher(q).unwrap().is_closed());
    }

    #[test]
    fn token_round_trips_through_u64() {
        let t = Token {
            index: 7,
            generation: u32::MAX,
        };
        assert_eq!(Token::from_u64(t.to_u64()), t);
    }

    #[test]
    fn the_change_log_records_adds_touches_and_removals() {
        let mut map = Map::new();
        let a = map.add(channel(), Quiet);
        map.update_interest(a);
        map.close(a);
        let log: Vec<String> = map.changes().iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(
            log,
            [
                format!("Added({:?})", a.token()),
                format!("Touched({:?})", a.token()),
                format!("Removed({:?})", a.token()),
            ]
        );
    }
}
