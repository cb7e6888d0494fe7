//! The loop: [`Loop`] (asyncore's `loop`), one iteration for every backend
//! (asyncore's `poll` on select(2), `poll2` on poll(2), and epoll(7)), the
//! event rules, timers, graceful shutdown, and the [`Context`] handlers get.
//!
//! One iteration, whatever the backend:
//!
//! 1. **Bring the kernel's view up to date.** The map's change log says
//!    which channels were added, removed, or reached from outside; those,
//!    and every channel whose handler asks its predicates every iteration
//!    ([`Predicates::EveryIteration`](crate::Predicates), asyncore's rule),
//!    are asked `readable()`/`writable()`, and the backend is told what
//!    *changed* (a `pollfd`'s events rewritten, an `fd_set` bit flipped, one
//!    `epoll_ctl`).
//! 2. **Wait** in the syscall, for at most the nearest of the loop's
//!    timeout, the next deadline, and the end of a shutdown's grace period.
//! 3. **Deliver** each ready channel's readiness through the event rules
//!    ([`rules`]), then the deadlines that passed.
//!
//! Nothing here allocates once the buffers have grown: an iteration that
//! adds or removes no channel performs no heap allocation.
//!
//! At `log`'s trace level each iteration records what was asked of the
//! kernel and what came back, in the syscall's own terms, then which handler
//! ran for each ready fd (see the crate docs, "Watching the loop").

pub(crate) mod context;
pub(crate) mod rules;
pub(crate) mod timers;
pub(crate) mod trace;

pub use context::Context;

use crate::backend::poll::PollSelector;
use crate::backend::readiness::IterTrace;
use crate::backend::select::SelectSelector;
use crate::backend::{Interest, RegisterError, Selector, Waited};
use crate::channel::Predicates;
use crate::map::{Change, Map, ShutdownState, Token};
use rules::{dispatch, dispatch_and_check, Event, Outcome};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};
use timers::TimerQueue;
use trace::Label;

/// Which syscall the loop waits in.
///
/// | | select(2) | poll(2) | epoll(7) |
/// |---|---|---|---|
/// | asyncore | `use_poll=False` (the default) | `use_poll=True` | (none) |
/// | fds | below `FD_SETSIZE` (1024) only | any | any |
/// | cost per wait | every fd up to the highest, in and out | every watched fd, in and out | the ready fds only |
/// | where | everywhere | everywhere | Linux |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// select(2): asyncore's default (`use_poll=False`).
    Select,
    /// poll(2): asyncore's `use_poll=True`.
    Poll,
    /// epoll(7), Linux only: the interest set is kept in the kernel, and a
    /// wait costs in proportion to the ready fds, not to every fd watched.
    /// Elsewhere an iteration fails with an `Unsupported` error naming the
    /// other backends (see [`Backend::is_available`]).
    Epoll,
}

impl Backend {
    /// Every backend, in the order the examples list them.
    pub const ALL: [Backend; 3] = [Backend::Select, Backend::Poll, Backend::Epoll];

    /// Whether this platform has the backend (epoll: Linux only).
    pub fn is_available(self) -> bool {
        match self {
            Backend::Select | Backend::Poll => true,
            Backend::Epoll => cfg!(target_os = "linux"),
        }
    }

    /// The syscall's name: `select`, `poll`, `epoll`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Select => "select",
            Backend::Poll => "poll",
            Backend::Epoll => "epoll",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the loop should go on after an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep looping.
    Continue,
    /// A handler called [`Context::exit`].
    Exit,
}

/// Why [`Loop::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The last channel closed (asyncore's loop ends when the map is empty).
    Empty,
    /// `count` iterations ran.
    Count,
    /// A handler called [`Context::exit`] (asyncore's `ExitNow`).
    Exit,
    /// A graceful shutdown ([`Context::shutdown`]) finished: every channel
    /// closed, by itself or at the end of the grace period.
    Shutdown,
}

/// asyncore's `loop(timeout=30.0, use_poll=False, map=None, count=None)`,
/// as a builder: `Loop::new().timeout(..).use_poll(..).count(..).run(&mut map)`.
///
/// A `Loop` also keeps what the backend needs between iterations (the
/// `pollfd` array, the `fd_set`s, the epoll instance), so reuse one `Loop`
/// for a map rather than building one per iteration. Cloning a `Loop`
/// copies its settings, not that state.
///
/// ```
/// use selectloop::{Backend, Loop, Map, Stop};
/// use std::time::Duration;
///
/// let mut map = Map::new();
/// let stop = Loop::new()
///     .timeout(Duration::from_millis(10))
///     .backend(Backend::Poll) // or .use_poll(true), as asyncore says it
///     .count(3)
///     .run(&mut map)?;
/// assert_eq!(stop, Stop::Empty); // nothing registered: returns at once
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Loop {
    timeout: Option<Duration>,
    backend: Backend,
    count: Option<u64>,
    state: Option<State>,
}

impl Clone for Loop {
    fn clone(&self) -> Self {
        Loop {
            timeout: self.timeout,
            backend: self.backend,
            count: self.count,
            state: None,
        }
    }
}

impl fmt::Debug for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loop")
            .field("timeout", &self.timeout)
            .field("backend", &self.backend)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Default for Loop {
    fn default() -> Self {
        Loop::new()
    }
}

impl Loop {
    /// asyncore's defaults: a 30 s timeout per iteration, the select
    /// backend, no iteration limit.
    pub fn new() -> Self {
        Loop {
            timeout: Some(Duration::from_secs(30)),
            backend: Backend::Select,
            count: None,
            state: None,
        }
    }

    /// How long one iteration may wait for an event: a `Duration`, or `None`
    /// to block until one arrives. `Duration::ZERO` polls without waiting.
    /// A deadline due sooner shortens the wait.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// asyncore's switch: `true` runs on poll(2), `false` (the default) on
    /// select(2). The same as `.backend(Backend::Poll)` /
    /// `.backend(Backend::Select)`.
    pub fn use_poll(self, use_poll: bool) -> Self {
        self.backend(if use_poll {
            Backend::Poll
        } else {
            Backend::Select
        })
    }

    /// Which syscall to wait in: select (the default), poll, or epoll.
    pub fn backend(mut self, backend: Backend) -> Self {
        if backend != self.backend {
            self.state = None;
        }
        self.backend = backend;
        self
    }

    /// Stop after `count` iterations (asyncore's `count`).
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// The backend this loop runs on.
    pub fn get_backend(&self) -> Backend {
        self.backend
    }

    /// Whether this loop runs on poll(2).
    pub fn uses_poll(&self) -> bool {
        self.backend == Backend::Poll
    }

    /// Runs one iteration (asyncore's `poll(timeout, map)` on select,
    /// `poll2(timeout, map)` on poll). An `Err` is a failure of the syscall
    /// itself (e.g. `ENOMEM`), or epoll asked for where there is none;
    /// never of one channel: channel failures go to that channel's
    /// handlers.
    pub fn iterate(&mut self, map: &mut Map) -> io::Result<Control> {
        if self.state.is_none() {
            self.state = Some(State::new(self.backend)?);
        }
        let timeout = self.timeout;
        match self.state.as_mut() {
            Some(state) => state.iterate(map, timeout),
            None => Ok(Control::Continue),
        }
    }

    /// Runs iterations until the map is empty, `count` iterations ran, a
    /// handler calls [`Context::exit`], or a graceful shutdown finished. An
    /// `Err` is a failure of the syscall itself, never of one channel.
    pub fn run(&mut self, map: &mut Map) -> io::Result<Stop> {
        let mut left = self.count;
        loop {
            if map.is_empty() {
                if map.shutdown != ShutdownState::Running {
                    map.shutdown = ShutdownState::Running;
                    return Ok(Stop::Shutdown);
                }
                return Ok(Stop::Empty);
            }
            match &mut left {
                Some(0) => return Ok(Stop::Count),
                Some(n) => *n -= 1,
                None => {}
            }
            if self.iterate(map)? == Control::Exit {
                return Ok(Stop::Exit);
            }
        }
    }
}

/// The backends, one of which a loop runs on.
enum AnySelector {
    Select(Box<SelectSelector>),
    Poll(PollSelector),
    #[cfg(target_os = "linux")]
    Epoll(crate::backend::epoll::EpollSelector),
}

impl AnySelector {
    fn new(backend: Backend) -> io::Result<AnySelector> {
        Ok(match backend {
            Backend::Select => AnySelector::Select(Box::default()),
            Backend::Poll => AnySelector::Poll(PollSelector::default()),
            #[cfg(target_os = "linux")]
            Backend::Epoll => AnySelector::Epoll(crate::backend::epoll::EpollSelector::new()?),
            #[cfg(not(target_os = "linux"))]
            Backend::Epoll => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the epoll backend is Linux only; use Backend::Poll or Backend::Select",
                ))
            }
        })
    }
}

/// A loop's state between iterations.
struct State {
    backend: Backend,
    selector: AnySelector,
    core: Core,
}

impl State {
    fn new(backend: Backend) -> io::Result<State> {
        Ok(State {
            backend,
            selector: AnySelector::new(backend)?,
            core: Core::new(),
        })
    }

    fn iterate(&mut self, map: &mut Map, timeout: Option<Duration>) -> io::Result<Control> {
        if self.core.seen != Some(map.log_stamp()) || self.core.start_over {
            // A first run, another loop ran this map meanwhile, or epoll
            // reported an fd it should no longer watch: start over from
            // the map's contents.
            if self.core.seen.is_some() {
                self.selector = AnySelector::new(self.backend)?;
            }
            self.core.start_over(map);
        }
        loop {
            let control = match &mut self.selector {
                AnySelector::Select(s) => self.core.iterate(&mut **s, map, timeout),
                AnySelector::Poll(s) => self.core.iterate(s, map, timeout),
                #[cfg(target_os = "linux")]
                AnySelector::Epoll(s) => self.core.iterate(s, map, timeout),
            }?;
            if !std::mem::take(&mut self.core.rebuild_before_wait) {
                return Ok(control);
            }
            // The backend's set must be rebuilt before this iteration's
            // wait (a channel traded its fd on epoll): rebuild, and run the
            // iteration again, from the start.
            self.selector = AnySelector::new(self.backend)?;
            self.core.start_over(map);
        }
    }
}

const ABSENT: u32 = u32::MAX;

/// What the loop knows of one slot of the map.
#[derive(Clone, Copy)]
struct Reg {
    /// The channel registered for this slot (`None`: none).
    token: Option<Token>,
    /// Its fd, as registered.
    fd: RawFd,
    /// What the backend watches it for.
    interest: Interest,
    /// Its position in `Core::asking`, or `ABSENT`.
    asking_at: u32,
    /// Its handler's predicates are asked every iteration
    /// ([`Predicates::EveryIteration`]).
    always_asks: bool,
}

const VACANT: Reg = Reg {
    token: None,
    fd: -1,
    interest: Interest::NONE,
    asking_at: ABSENT,
    always_asks: false,
};

/// The backend-independent state of a loop.
struct Core {
    /// By slot index.
    regs: Vec<Reg>,
    /// Channels asked `readable()`/`writable()` every iteration.
    asking: Vec<Token>,
    timers: TimerQueue,
    /// The map's change-log stamp after this loop last read it.
    seen: Option<(u64, u64)>,
    /// Start over at the next iteration (epoll saw an orphan).
    start_over: bool,
    /// A handler asked the loop to stop.
    exit: bool,
    /// The map's insertion count at this loop's last complete walk for
    /// channels not told of the graceful shutdown yet.
    told_at: Option<u64>,
    /// This iteration stopped before its wait for the backend's set to be
    /// rebuilt; it is run again once it is.
    rebuild_before_wait: bool,
    started: Instant,
    iteration: u64,
}

impl Core {
    fn new() -> Core {
        Core {
            regs: Vec::new(),
            asking: Vec::new(),
            timers: TimerQueue::default(),
            seen: None,
            start_over: false,
            exit: false,
            told_at: None,
            rebuild_before_wait: false,
            started: Instant::now(),
            iteration: 0,
        }
    }

    /// Forgets everything registered; every channel of `map` counts as
    /// added.
    fn start_over(&mut self, map: &mut Map) {
        self.told_at = None;
        self.regs.clear();
        self.asking.clear();
        self.timers = TimerQueue::default();
        self.start_over = false;
        map.changes().clear();
        for index in 0..map.capacity() {
            if let Some(t) = map.token_at(index) {
                if let Some(ch) = map.entry_mut(t) {
                    ch.dispatcher_mut().deadline.queued = None;
                }
                map.changes().push(Change::Added(t));
            }
        }
    }

    fn iterate<S: Selector>(
        &mut self,
        sel: &mut S,
        map: &mut Map,
        timeout: Option<Duration>,
    ) -> io::Result<Control> {
        self.exit = false;
        self.iteration += 1;
        let trace = log::log_enabled!(log::Level::Trace);
        let mut wait = timeout;
        // Each step that usually has nothing to do is tested before its call.
        if map.shutdown != ShutdownState::Running {
            let grace_left = self.shutdown_step(map);
            wait = shorter(wait, grace_left);
        }
        if let Some(pause_left) = self.sync(sel, map, trace) {
            wait = shorter(wait, Some(pause_left));
        }
        if map.is_empty() || self.exit {
            // The last channels closed behind the loop's back, or an error
            // delivered while registering ended the loop.
            return Ok(self.control(map));
        }
        if self.start_over {
            // The backend's set must be rebuilt before the wait: the
            // caller does it and runs this iteration again.
            self.iteration -= 1;
            self.rebuild_before_wait = true;
            return Ok(Control::Continue);
        }
        if self.timers.next().is_some() {
            self.timers.drop_gone(|t| map.contains(t));
            if let Some(next) = self.timers.next() {
                wait = shorter(wait, Some(next.saturating_duration_since(Instant::now())));
            }
        }
        let it = IterTrace {
            started: self.started,
            iteration: self.iteration,
        };
        let waited = sel.wait(wait, trace.then_some(&it))?;
        match waited {
            Waited::Ready(0) => {}
            Waited::Ready(_) => {
                let Core {
                    regs,
                    exit,
                    start_over,
                    ..
                } = self;
                sel.for_each_ready(|token, fd, ready| {
                    match dispatch_and_check(map, exit, token, fd, Event::Ready(ready), true) {
                        // Asked again (and the backend told) at the next
                        // iteration, not now: the backend's arrays are
                        // being read.
                        Some(Outcome::Changed) => map.touch(token),
                        Some(_) => {}
                        None => stale_or_orphan(regs, start_over, token, fd),
                    }
                    !*exit
                });
            }
            Waited::BadFd => {
                let Core { exit, .. } = self;
                sel.for_each_registered(|token, fd| {
                    if !*exit && !crate::sys::fd_is_open(fd) {
                        dispatch(map, exit, token, fd, Event::FdClosed("EBADF from select"));
                    }
                });
            }
        }
        if self.timers.next().is_some() {
            self.run_timers(map);
        }
        Ok(self.control(map))
    }

    /// How the iteration ended; a graceful shutdown whose drain emptied
    /// the map is over from here on.
    fn control(&mut self, map: &mut Map) -> Control {
        if matches!(map.shutdown, ShutdownState::Draining(_)) && map.is_empty() {
            map.shutdown = ShutdownState::Done;
        }
        if std::mem::take(&mut self.exit) {
            Control::Exit
        } else {
            Control::Continue
        }
    }

    /// Brings the backend up to date with the map: the change log, then
    /// every channel asked each iteration. Returns how long a listener
    /// paused on EMFILE has left, to wake up for it.
    fn sync<S: Selector>(&mut self, sel: &mut S, map: &mut Map, trace: bool) -> Option<Duration> {
        let mut pause = None;
        let mut now = None;
        if !map.changes().is_empty() {
            self.apply_changes(sel, map, trace, &mut now, &mut pause);
        }
        let mut i = 0;
        while i < self.asking.len() {
            let token = self.asking[i];
            let left = self.evaluate(sel, map, token, &mut now);
            pause = shorter(pause, left);
            if self.asking.get(i) == Some(&token) {
                i += 1;
            } // else it left the list and another took its place
        }
        // What asking closed (an fd too large for select, ...).
        if !map.changes().is_empty() {
            self.apply_changes(sel, map, trace, &mut now, &mut pause);
        }
        self.seen = Some(map.drained());
        pause
    }

    fn apply_changes<S: Selector>(
        &mut self,
        sel: &mut S,
        map: &mut Map,
        trace: bool,
        now: &mut Option<Instant>,
        pause: &mut Option<Duration>,
    ) {
        // Removals first. A channel that closed in this pass can leave the
        // map after a newcomer that got its fd number joined it (closed
        // through `get_mut`, then its stale event dropped it), and select
        // and epoll know fds by number: forgetting the old channel after
        // registering the newcomer would unwatch the newcomer.
        for i in 0..map.changes().len() {
            if let Change::Removed(t) = map.changes()[i] {
                if self.is_registered(t) {
                    self.forget(sel, t);
                }
            }
        }
        let mut i = 0;
        while let Some(&change) = map.changes().get(i) {
            i += 1;
            match change {
                Change::Added(t) => self.add(sel, map, t, trace, now, pause),
                Change::Touched(t) => {
                    if self.is_registered(t) {
                        let left = self.evaluate(sel, map, t, now);
                        *pause = shorter(*pause, left);
                    }
                }
                // (Forgotten above, unless it left the map just now.)
                Change::Removed(t) => {
                    if self.is_registered(t) {
                        self.forget(sel, t);
                    }
                }
            }
        }
        map.changes().clear();
    }

    /// Registers channel `t`, which joined the map.
    fn add<S: Selector>(
        &mut self,
        sel: &mut S,
        map: &mut Map,
        t: Token,
        trace: bool,
        now: &mut Option<Instant>,
        pause: &mut Option<Duration>,
    ) {
        let Some(ch) = map.entry(t) else { return };
        if trace {
            if let Some(fd) = ch.dispatcher().fileno() {
                log::trace!("fd {fd}: opened: {}", Label(ch));
            }
        }
        if self.regs.len() <= t.index() {
            self.regs.resize(t.index() + 1, VACANT);
        }
        self.regs[t.index()] = Reg {
            token: Some(t),
            always_asks: ch.predicates() == Predicates::EveryIteration,
            ..VACANT
        };
        let left = self.evaluate(sel, map, t, now);
        *pause = shorter(*pause, left);
    }

    fn is_registered(&self, t: Token) -> bool {
        self.regs.get(t.index()).is_some_and(|r| r.token == Some(t))
    }

    /// Stops watching channel `t` and forgets it.
    fn forget<S: Selector>(&mut self, sel: &mut S, t: Token) {
        let reg = self.regs[t.index()];
        if reg.fd >= 0 {
            sel.deregister(t, reg.fd, reg.interest);
        }
        self.set_asking(t, false);
        self.regs[t.index()] = VACANT;
    }

    /// Adds `t` to, or removes it from, the channels asked every iteration.
    fn set_asking(&mut self, t: Token, asking: bool) {
        let at = self.regs[t.index()].asking_at;
        match (at == ABSENT, asking) {
            (true, true) => {
                self.regs[t.index()].asking_at = self.asking.len() as u32;
                self.asking.push(t);
            }
            (false, false) => {
                self.asking.swap_remove(at as usize);
                if let Some(moved) = self.asking.get(at as usize) {
                    self.regs[moved.index()].asking_at = at;
                }
                self.regs[t.index()].asking_at = ABSENT;
            }
            _ => {}
        }
    }

    /// Asks channel `t` what it wants (asyncore's `readable()`,
    /// `writable()`, and the state rules on top: a listener never asks to
    /// write, a connecting socket always does, a listener paused on EMFILE
    /// does not ask to read) and tells the backend if that changed.
    /// Returns how long an EMFILE pause has left.
    #[inline]
    fn evaluate<S: Selector>(
        &mut self,
        sel: &mut S,
        map: &mut Map,
        t: Token,
        now: &mut Option<Instant>,
    ) -> Option<Duration> {
        let removals = map.removals();
        let Some(ch) = map.entry_mut(t) else {
            return None; // running, or gone
        };
        // An EMFILE pause that is over is lifted before the channel's
        // wishes are recorded: the record must say "not paused" then, or
        // the next pause would look like no change to the fast path's
        // check, and the listener would stay watched, and spin.
        let mut paused_at = None;
        if ch.dispatcher().is_accept_paused() {
            let now = *now.get_or_insert_with(Instant::now);
            if ch.dispatcher_mut().accept_paused(now, removals) {
                paused_at = Some(now);
            }
        }
        // Likewise the mark of a dispatcher no loop has looked at (one put
        // in place of the registered one): taken before the record.
        let fresh = ch.dispatcher_mut().take_fresh();
        let wants = ch.wants();
        let d = ch.dispatcher_mut();
        self.timers.sync(t, &mut d.deadline);
        let Some(fd) = d.fileno() else {
            let closed = d.is_closed() || d.deadline().is_none();
            // Nothing to watch: a timer, or a channel closed behind the
            // loop's back (then no event can ever reach it: it leaves).
            self.forget(sel, t);
            if closed {
                map.remove(t);
            } else {
                self.regs[t.index()] = Reg {
                    token: Some(t),
                    ..VACANT
                };
            }
            return None;
        };
        let accepting = d.accepting();
        let Interest { mut read, write } = wants.interest();
        let mut pause_left = None;
        if let (true, true, Some(now)) = (read, accepting, paused_at) {
            read = false;
            pause_left = d.accept_pause_left(now);
        }
        // A listener paused on EMFILE waits for time or a removal, and a
        // connecting socket for its connect: asked every iteration.
        let asking_anyway = d.connecting() || (accepting && d.is_accept_paused());
        let new = Interest { read, write };
        let reg = self.regs[t.index()];
        // A dispatcher put in place of the registered one: a new file, even
        // if its fd got the old number.
        let reg = if fresh && reg.fd >= 0 {
            self.unwatch(sel, t, reg);
            Reg {
                fd: -1,
                interest: Interest::NONE,
                ..reg
            }
        } else {
            reg
        };
        if new != reg.interest || fd != reg.fd {
            self.change_interest(sel, map, t, fd, reg, new);
        }
        let asking = reg.always_asks || asking_anyway;
        if asking != (reg.asking_at != ABSENT) && self.is_registered(t) {
            self.set_asking(t, asking);
        }
        pause_left
    }

    /// Stops watching the file channel `t` was registered with (`reg`): its
    /// fd changed, or its dispatcher was replaced.
    fn unwatch<S: Selector>(&mut self, sel: &mut S, t: Token, reg: Reg) {
        sel.deregister(t, reg.fd, reg.interest);
        if S::WATCHES_FILES && !reg.interest.is_none() {
            // The old file may live on (a dup) with its entry: rebuild the
            // set before the next wait.
            self.start_over = true;
        }
    }

    /// Tells the backend that channel `t` (registered as `reg`) now wants
    /// `new` on `fd`; a refusal goes to the channel's handlers.
    #[cold]
    fn change_interest<S: Selector>(
        &mut self,
        sel: &mut S,
        map: &mut Map,
        t: Token,
        fd: RawFd,
        reg: Reg,
        new: Interest,
    ) {
        let old = if fd == reg.fd {
            reg.interest
        } else {
            if reg.fd >= 0 {
                self.unwatch(sel, t, reg);
            }
            Interest::NONE
        };
        match sel.set_interest(t, fd, old, new) {
            Ok(()) => {
                self.regs[t.index()].interest = new;
                self.regs[t.index()].fd = fd;
            }
            Err(err) => {
                self.regs[t.index()].interest = Interest::NONE;
                self.regs[t.index()].fd = fd;
                let event = match err {
                    RegisterError::FdTooLarge(e) => Event::FdTooLarge(e),
                    RegisterError::Closed(cause) => Event::FdClosed(cause),
                    RegisterError::Other(e) => {
                        Event::RegisterFailed(e.raw_os_error().unwrap_or(libc::EINVAL))
                    }
                };
                dispatch(map, &mut self.exit, t, fd, event);
            }
        }
    }

    /// Delivers `handle_timeout` to every channel whose deadline has
    /// passed, in deadline order. Deadlines that come due while these
    /// handlers run wait for the next iteration (whose wait is then zero),
    /// so a handler that re-arms at once cannot hold the loop here.
    fn run_timers(&mut self, map: &mut Map) {
        let now = Instant::now();
        while let Some((when, token)) = self.timers.pop_due(now) {
            if self.exit {
                break;
            }
            let Some(ch) = map.entry_mut(token) else {
                continue; // closed meanwhile
            };
            let d = ch.dispatcher_mut();
            if !self.timers.take_due(when, token, &mut d.deadline, now) {
                continue;
            }
            let fd = d.fileno();
            if dispatch(map, &mut self.exit, token, fd.unwrap_or(-1), Event::Timeout) {
                let done = fd.is_none()
                    && map
                        .entry(token)
                        .is_some_and(|ch| ch.dispatcher().deadline().is_none());
                if done {
                    // A one-shot timer whose handler did not re-arm it.
                    map.remove(token);
                } else {
                    // Its deadline moved on (an interval), or its handler
                    // set a new one.
                    map.touch(token);
                }
            }
        }
    }

    /// Delivers `handle_shutdown` to every channel not told yet (each is
    /// told once, whichever loop runs the map). A channel added meanwhile
    /// (by a handler being told, into a slot freed by another) is told in
    /// the same step: the slots are walked again until a walk finds nobody.
    /// Nothing was added since this loop's last walk: nothing to walk.
    fn tell_shutdown(&mut self, map: &mut Map) {
        while self.told_at != Some(map.insertions()) && !self.exit {
            let insertions = map.insertions();
            let mut from = 0;
            while !self.exit {
                let Some(token) = map.next_untold(&mut from) else {
                    break;
                };
                let fd = map.fileno(token).unwrap_or(-1);
                if dispatch(map, &mut self.exit, token, fd, Event::Shutdown) {
                    map.touch(token);
                }
            }
            // Only a walk that reached the end counts: one cut short by
            // `exit` goes on at the next step.
            self.told_at = (!self.exit).then_some(insertions);
        }
    }

    /// Moves a graceful shutdown on: tells every channel when one was asked
    /// for (and every channel that joins while the loop drains), closes
    /// what is left when the grace period is over. Returns the time left
    /// of the grace period, for the wait.
    fn shutdown_step(&mut self, map: &mut Map) -> Option<Duration> {
        match map.shutdown {
            ShutdownState::Running | ShutdownState::Done => None,
            ShutdownState::Requested(grace) => {
                log::debug!(
                    "graceful shutdown: {} channels told, {:.3}s grace",
                    map.len(),
                    grace.as_secs_f64()
                );
                map.shutdown = ShutdownState::Draining(crate::deadline::after(grace));
                self.told_at = None;
                self.tell_shutdown(map);
                Some(grace)
            }
            ShutdownState::Draining(until) => {
                let now = Instant::now();
                if now >= until {
                    log::debug!(
                        "graceful shutdown: grace period over, closing {} channels",
                        map.len()
                    );
                    map.close_all();
                    Some(Duration::ZERO)
                } else {
                    // Those that joined since (added by a handler, a
                    // timer, an outbound connection...) are told too.
                    self.tell_shutdown(map);
                    Some(until - now)
                }
            }
        }
    }
}

/// A ready event for a token the map does not hold: a channel that closed
/// earlier in this iteration (dropped), or one the loop no longer watches.
/// Only epoll can report the latter: a channel whose fd closed while a
/// `dup` of it stayed open, so the kernel kept it. Its kernel entry cannot
/// be removed by fd number any more; a fresh epoll instance drops it.
#[cold]
fn stale_or_orphan(regs: &[Reg], start_over: &mut bool, token: Token, fd: RawFd) {
    if regs
        .get(token.index())
        .is_some_and(|r| r.token == Some(token))
    {
        rules::trace_stale(fd);
    } else {
        log::debug!("fd {fd}: event for a channel no longer watched; rebuilding the interest set");
        *start_over = true;
    }
}

/// The nearer of two waits (`None`: forever).
fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
