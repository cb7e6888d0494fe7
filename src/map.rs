//! The channel map: asyncore's `socket_map`, a value the caller owns.
//!
//! asyncore keys its map by fd. An fd number alone cannot tell a channel
//! from the one that got the same number after it closed (the kernel hands
//! out the lowest free fd, so reuse within one iteration is the rule, not the
//! exception). The map here is a slab keyed by [`Token`] (slot index +
//! generation): a token names one channel for its whole life and never
//! another, which is how the loop drops stale events instead of delivering
//! them to a newcomer.

use crate::channel::{Channel, IntoChannel};
use crate::event_loop::Scratch;
use std::fmt;

/// The identity of a channel in a [`Map`]: returned by
/// [`Map::add`]/[`Context::add`](crate::Context::add), valid until that
/// channel closes, and never reused for another channel of the same map.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.{})", self.index, self.generation)
    }
}

enum State {
    Vacant {
        next_free: u32,
    },
    Occupied(Box<dyn Channel>),
    /// Taken out while one of its handlers runs.
    Busy,
}

struct Slot {
    generation: u32,
    state: State,
}

const NONE: u32 = u32::MAX;

/// The slab behind a [`Map`], also reachable from a [`Context`](crate::Context).
pub(crate) struct Slots {
    slots: Vec<Slot>,
    free_head: u32,
    len: usize,
    /// How many channels have left the map; a listener paused on EMFILE
    /// resumes when this changes.
    pub(crate) removals: u64,
    /// A handler asked the loop to stop (asyncore's `ExitNow`).
    pub(crate) exit: bool,
    /// A handler closed the channel that is running (via its token).
    pub(crate) close_busy: bool,
    /// A graceful shutdown asked for or under way.
    pub(crate) shutdown: ShutdownState,
}

/// Where a graceful shutdown stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ShutdownState {
    #[default]
    Running,
    /// Asked for, with this grace period; begins at the next iteration.
    Requested(std::time::Duration),
    /// Every channel was told; what is left at this instant is closed.
    Draining(std::time::Instant),
}

impl Slots {
    fn new() -> Self {
        Slots {
            slots: Vec::new(),
            free_head: NONE,
            len: 0,
            removals: 0,
            exit: false,
            close_busy: false,
            shutdown: ShutdownState::Running,
        }
    }

    pub(crate) fn insert(&mut self, ch: Box<dyn Channel>) -> Token {
        self.len += 1;
        if self.free_head != NONE {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            if let State::Vacant { next_free } = slot.state {
                self.free_head = next_free;
            }
            slot.state = State::Occupied(ch);
            return Token {
                index,
                generation: slot.generation,
            };
        }
        let index = self.slots.len() as u32;
        self.slots.push(Slot {
            generation: 0,
            state: State::Occupied(ch),
        });
        Token {
            index,
            generation: 0,
        }
    }

    fn slot(&self, t: Token) -> Option<&Slot> {
        self.slots
            .get(t.index as usize)
            .filter(|s| s.generation == t.generation)
    }

    fn slot_mut(&mut self, t: Token) -> Option<&mut Slot> {
        self.slots
            .get_mut(t.index as usize)
            .filter(|s| s.generation == t.generation)
    }

    pub(crate) fn get_mut(&mut self, t: Token) -> Option<&mut (dyn Channel + 'static)> {
        match &mut self.slot_mut(t)?.state {
            State::Occupied(ch) => Some(&mut **ch),
            _ => None,
        }
    }

    pub(crate) fn get(&self, t: Token) -> Option<&(dyn Channel + 'static)> {
        match &self.slot(t)?.state {
            State::Occupied(ch) => Some(&**ch),
            _ => None,
        }
    }

    /// Whether `t` names a live channel (registered or running).
    pub(crate) fn contains(&self, t: Token) -> bool {
        self.slot(t)
            .is_some_and(|s| !matches!(s.state, State::Vacant { .. }))
    }

    /// Takes a channel out to run one of its handlers; the slot stays
    /// reserved (`Busy`) so nothing else is inserted there meanwhile.
    pub(crate) fn take(&mut self, t: Token) -> Option<Box<dyn Channel>> {
        let slot = self.slot_mut(t)?;
        match std::mem::replace(&mut slot.state, State::Busy) {
            State::Occupied(ch) => Some(ch),
            other => {
                slot.state = other;
                None
            }
        }
    }

    /// Puts a channel back after its handlers ran, or drops it (closing its
    /// fd) if it closed meanwhile.
    pub(crate) fn put_back(&mut self, t: Token, ch: Box<dyn Channel>) {
        let closed = std::mem::take(&mut self.close_busy) || ch.dispatcher().is_closed();
        if closed {
            drop(ch);
            self.vacate(t);
        } else if let Some(slot) = self.slot_mut(t) {
            slot.state = State::Occupied(ch);
        }
    }

    fn vacate(&mut self, t: Token) {
        let free_head = self.free_head;
        if let Some(slot) = self.slot_mut(t) {
            slot.state = State::Vacant {
                next_free: free_head,
            };
            slot.generation = slot.generation.wrapping_add(1);
            self.free_head = t.index;
            self.len -= 1;
            self.removals += 1;
        }
    }

    /// Removes and drops a registered channel. A running (`Busy`) one is
    /// marked, and dropped when its handler returns.
    pub(crate) fn remove(&mut self, t: Token, running: Option<Token>) -> bool {
        if running == Some(t) {
            self.close_busy = true;
            return true;
        }
        match self.slot_mut(t) {
            Some(slot) if matches!(slot.state, State::Occupied(_)) => {
                let channel = std::mem::replace(&mut slot.state, State::Busy);
                drop(channel); // closes the fd
                self.vacate(t);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Asks for a graceful shutdown; a second request while one is under
    /// way changes nothing.
    pub(crate) fn request_shutdown(&mut self, grace: std::time::Duration) {
        if self.shutdown == ShutdownState::Running {
            self.shutdown = ShutdownState::Requested(grace);
        }
    }

    /// The number of slots, live or not (tokens index below this).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The token of the channel in slot `index`, if it is registered.
    pub(crate) fn token_at(&self, index: usize) -> Option<Token> {
        let slot = self.slots.get(index)?;
        match slot.state {
            State::Occupied(_) => Some(Token {
                index: index as u32,
                generation: slot.generation,
            }),
            _ => None,
        }
    }
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
/// let token = map.add(Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?, Idle);
/// assert!(map.contains(token));
/// map.close(token);
/// assert!(map.is_empty());
/// Loop::new().run(&mut map)?; // returns at once: the map is empty
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Map {
    pub(crate) slots: Slots,
    pub(crate) scratch: Scratch,
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
            slots: Slots::new(),
            scratch: Scratch::default(),
        }
    }

    /// Registers a dispatcher with its handler (asyncore's `add_channel`);
    /// from the next iteration on the loop asks the handler's `readable` and
    /// `writable` and delivers its events.
    pub fn add<C: IntoChannel<H>, H>(&mut self, ch: C, handler: H) -> Token {
        self.slots.insert(ch.into_channel(handler))
    }

    /// Closes a channel and removes it from the map (asyncore's
    /// `close()` on a channel from outside). Its handler gets no
    /// `handle_close`. Returns whether it was there.
    pub fn close(&mut self, token: Token) -> bool {
        self.slots.remove(token, None)
    }

    /// Whether `token` names a channel in the map.
    pub fn contains(&self, token: Token) -> bool {
        self.slots.contains(token)
    }

    /// The number of channels.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no channels (the loop stops then).
    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// The tokens of all channels, in slot order.
    pub fn tokens(&self) -> impl Iterator<Item = Token> + '_ {
        (0..self.slots.capacity()).filter_map(|i| self.slots.token_at(i))
    }

    /// The dispatcher of channel `token` as type `D` (`Dispatcher`,
    /// `DispatcherWithSend`, `AsyncChat`), or `None` if the token is stale or
    /// the type does not match.
    pub fn channel_mut<D: 'static>(&mut self, token: Token) -> Option<&mut D> {
        self.slots.get_mut(token)?.dispatcher_any().downcast_mut()
    }

    /// The handler of channel `token` as type `H`, or `None` if the token is
    /// stale or the type does not match.
    pub fn handler_mut<H: 'static>(&mut self, token: Token) -> Option<&mut H> {
        self.slots.get_mut(token)?.handler_any().downcast_mut()
    }

    /// The fd of channel `token`.
    pub fn fileno(&self, token: Token) -> Option<std::os::fd::RawFd> {
        self.slots.get(token)?.dispatcher().fileno()
    }

    /// Starts a graceful shutdown, as [`Context::shutdown`](crate::Context::shutdown)
    /// does from inside a handler: at the next iteration every channel's
    /// [`handle_shutdown`](crate::Handler::handle_shutdown) runs (listeners
    /// close, buffered channels deliver their queue and then close), and
    /// after `grace` whatever is still open is closed. [`Loop::run`](crate::Loop::run)
    /// then returns [`Stop::Shutdown`](crate::Stop::Shutdown).
    pub fn shutdown(&mut self, grace: std::time::Duration) {
        self.slots.request_shutdown(grace);
    }

    /// Closes every channel and empties the map (asyncore's `close_all`).
    /// Handlers get no `handle_close`.
    pub fn close_all(&mut self) {
        for index in 0..self.slots.capacity() {
            if let Some(t) = self.slots.token_at(index) {
                self.slots.remove(t, None);
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
            if let Some(ch) = self.slots.get(t) {
                m.entry(&t, ch.dispatcher());
            }
        }
        m.finish()
    }
}
