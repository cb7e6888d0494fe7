//! The loop: one select(2) iteration (asyncore's `poll`), one poll(2)
//! iteration (asyncore's `poll2`), and [`Loop`] (asyncore's `loop`).
//!
//! Each iteration asks every channel `readable()` and `writable()`, builds
//! the syscall's input from the answers, waits, and hands each ready channel
//! to the event rules of [`readwrite`](crate::readwrite). The buffers (the
//! `pollfd` array, the three `fd_set`s, the list of registered channels) live
//! in the [`Map`] and are cleared and refilled, so an iteration that adds or
//! removes no channel allocates nothing.
//!
//! At `log`'s trace level each iteration records what was asked of the
//! kernel and what came back, in the syscall's own terms, then which handler
//! ran for each ready fd (see the crate docs, "Watching the loop").

use crate::map::{Map, ShutdownState, Slots, Token};
use crate::readwrite::{dispatch, Backend, Event};
use crate::sys::{self, FdSet, PollFd, PollFlags};
use crate::timers::TimerQueue;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// One channel registered with the syscall in this iteration.
#[derive(Clone, Copy)]
struct Registration {
    token: Token,
    fd: RawFd,
    /// select only: the fd does not fit an fd_set.
    too_large: bool,
}

/// The per-map buffers an iteration reuses.
#[derive(Default)]
pub(crate) struct Scratch {
    regs: Vec<Registration>,
    pollfds: Vec<PollFd>,
    read: FdSet,
    write: FdSet,
    except: FdSet,
    timers: TimerQueue,
}

/// What a channel wants this iteration.
struct Interest {
    fd: RawFd,
    read: bool,
    write: bool,
}

/// Whether the loop should go on after an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep looping.
    Continue,
    /// A handler called [`Context::exit`](crate::Context::exit).
    Exit,
}

/// Asks every channel what it wants; calls `register` for each one that
/// wants something. Channels closed from outside the loop leave the map
/// here. Returns the timeout, shortened if a listener is paused on EMFILE.
fn collect_interest(
    slots: &mut Slots,
    timers: &mut TimerQueue,
    timeout: Option<Duration>,
    mut register: impl FnMut(Token, Interest),
) -> Option<Duration> {
    let removals = slots.removals;
    let mut timeout = timeout;
    let mut now: Option<Instant> = None;
    for index in 0..slots.capacity() {
        let Some(token) = slots.token_at(index) else {
            continue;
        };
        let Some(ch) = slots.get_mut(token) else {
            continue;
        };
        let d = ch.dispatcher_mut();
        timers.sync(token, &mut d.deadline);
        let Some(fd) = d.fileno() else {
            if d.is_closed() || d.deadline().is_none() {
                // Closed behind the loop's back, or a timer with nothing
                // left to wait for: no event can ever reach it.
                slots.remove(token, None);
            }
            continue;
        };
        let mut read = ch.readable();
        let write = ch.writable();
        let d = ch.dispatcher_mut();
        let write = (write || d.connecting()) && !d.accepting();
        if read && d.accepting() && d.is_accept_paused() {
            let now = *now.get_or_insert_with(Instant::now);
            if d.accept_paused(now, removals) {
                read = false;
                let left = d.accept_pause_left(now).unwrap_or_default();
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
        }
        if read || write {
            register(token, Interest { fd, read, write });
        }
    }
    match timers.next() {
        Some(next) => {
            let left = next.saturating_duration_since(now.unwrap_or_else(Instant::now));
            Some(timeout.map_or(left, |t| t.min(left)))
        }
        None => timeout,
    }
}

/// Moves a graceful shutdown on: tells every channel when one was asked
/// for, closes what is left when the grace period is over. Returns the
/// time left of the grace period, for the wait.
fn shutdown_step(slots: &mut Slots, backend: Backend) -> Option<Duration> {
    match slots.shutdown {
        ShutdownState::Running => None,
        ShutdownState::Requested(grace) => {
            log::debug!(
                "graceful shutdown: {} channels told, {:.3}s grace",
                slots.len(),
                grace.as_secs_f64()
            );
            slots.shutdown = ShutdownState::Draining(crate::deadline::after(grace));
            for index in 0..slots.capacity() {
                if slots.exit {
                    break;
                }
                if let Some(token) = slots.token_at(index) {
                    let fd = slots
                        .get(token)
                        .and_then(|ch| ch.dispatcher().fileno())
                        .unwrap_or(-1);
                    dispatch(slots, token, fd, Event::Shutdown, backend);
                }
            }
            Some(grace)
        }
        ShutdownState::Draining(until) => {
            let now = Instant::now();
            if now >= until {
                log::debug!(
                    "graceful shutdown: grace period over, closing {} channels",
                    slots.len()
                );
                for index in 0..slots.capacity() {
                    if let Some(t) = slots.token_at(index) {
                        slots.remove(t, None);
                    }
                }
                Some(Duration::ZERO)
            } else {
                Some(until - now)
            }
        }
    }
}

/// Delivers `handle_timeout` to every channel whose deadline has passed, in
/// deadline order. Deadlines that come due while these handlers run wait
/// for the next iteration (whose wait is then zero), so a handler that
/// re-arms at once cannot hold the loop here.
fn run_timers(slots: &mut Slots, timers: &mut TimerQueue, backend: Backend) {
    if timers.next().is_none() {
        return;
    }
    let now = Instant::now();
    while let Some((when, token)) = timers.pop_due(now) {
        if slots.exit {
            break;
        }
        let Some(ch) = slots.get_mut(token) else {
            continue; // closed meanwhile
        };
        let d = ch.dispatcher_mut();
        if timers.take_due(when, token, &mut d.deadline, now) {
            let fd = d.fileno();
            dispatch(slots, token, fd.unwrap_or(-1), Event::Timeout, backend);
            if fd.is_none() {
                // A one-shot timer whose handler did not re-arm it is done.
                let done = slots
                    .get(token)
                    .is_some_and(|ch| ch.dispatcher().deadline().is_none());
                if done {
                    slots.remove(token, None);
                }
            }
        }
    }
}

/// One iteration on select(2): asyncore's `poll(timeout, map)`.
///
/// A channel's fd goes in the read set if `readable()`, in the write set if
/// `writable()` (or connecting) and not accepting, and in the except set if
/// either. With nothing to wait for, it sleeps `timeout`. A channel whose fd
/// is at or above [`FD_SETSIZE`](crate::sys::FD_SETSIZE) gets an
/// [`FdSetSizeError`](crate::sys::FdSetSizeError) through `handle_error`
/// and is closed (select can never watch it); the others are served as
/// usual.
pub fn poll(map: &mut Map, timeout: Option<Duration>) -> io::Result<Control> {
    let Map { slots, scratch } = map;
    slots.exit = false;
    let timeout = shorter(timeout, shutdown_step(slots, Backend::Select));
    if slots.len() == 0 || slots.exit {
        return Ok(control(slots));
    }
    let Scratch {
        regs,
        read,
        write,
        except,
        timers,
        ..
    } = scratch;
    regs.clear();
    read.clear();
    write.clear();
    except.clear();
    let mut too_large = false;
    let timeout = collect_interest(slots, timers, timeout, |token, want| {
        let fits = (!want.read || read.insert(want.fd).is_ok())
            && (!want.write || write.insert(want.fd).is_ok())
            && except.insert(want.fd).is_ok();
        too_large |= !fits;
        regs.push(Registration {
            token,
            fd: want.fd,
            too_large: !fits,
        });
    });
    if slots.len() == 0 {
        // The last channels were closed behind the loop's back (through
        // `channel_mut(..).close()`): nothing is left to wait for.
        return Ok(control(slots));
    }
    // An fd that did not fit must hear of it now, not after a full sleep.
    let timeout = if too_large {
        Some(Duration::ZERO)
    } else {
        timeout
    };
    let trace = log::log_enabled!(log::Level::Trace);
    if trace {
        log::trace!(
            "select(readfds={:?}, writefds={:?}, exceptfds={:?}, timeout={})",
            read,
            write,
            except,
            ShowTimeout(timeout)
        );
    }
    match sys::select(read, write, except, timeout) {
        Ok(n) => {
            if trace {
                log::trace!(
                    "select -> {n} ready: readfds={:?}, writefds={:?}, exceptfds={:?}",
                    read,
                    write,
                    except
                );
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
            log::trace!("select -> EBADF: looking for the closed fd");
            for reg in regs.iter() {
                if !reg.too_large && !sys::fd_is_open(reg.fd) {
                    dispatch(slots, reg.token, reg.fd, Event::FdClosed, Backend::Select);
                }
            }
            return Ok(control(slots));
        }
        Err(e) => return Err(e),
    }
    for reg in regs.iter() {
        if slots.exit {
            break;
        }
        let event = if reg.too_large {
            Event::FdTooLarge(sys::FdSetSizeError {
                fd: reg.fd,
                limit: sys::FD_SETSIZE,
            })
        } else {
            let mut flags = PollFlags::EMPTY;
            if read.contains(reg.fd) {
                flags |= PollFlags::POLLIN;
            }
            if write.contains(reg.fd) {
                flags |= PollFlags::POLLOUT;
            }
            if except.contains(reg.fd) {
                flags |= PollFlags::POLLPRI;
            }
            if flags.is_empty() {
                continue;
            }
            Event::Ready(flags)
        };
        dispatch(slots, reg.token, reg.fd, event, Backend::Select);
    }
    run_timers(slots, timers, Backend::Select);
    Ok(control(slots))
}

/// One iteration on poll(2): asyncore's `poll2(timeout, map)`.
///
/// A channel asks for `POLLIN|POLLPRI` if `readable()` and `POLLOUT` if
/// `writable()` (or connecting) and not accepting; a channel that asks for
/// nothing is left out of the array (so its `POLLHUP` cannot spin the loop).
/// `POLLIN` is a read event, `POLLOUT` a write event, `POLLPRI` an expt event,
/// `POLLHUP`/`POLLERR` lead to `handle_close` (after the data left is read,
/// when `POLLIN` came with them), and `POLLNVAL` (the fd was
/// closed behind the channel's back) to `handle_error` and removal.
pub fn poll2(map: &mut Map, timeout: Option<Duration>) -> io::Result<Control> {
    let Map { slots, scratch } = map;
    slots.exit = false;
    let timeout = shorter(timeout, shutdown_step(slots, Backend::Poll));
    if slots.len() == 0 || slots.exit {
        return Ok(control(slots));
    }
    let Scratch {
        regs,
        pollfds,
        timers,
        ..
    } = scratch;
    regs.clear();
    pollfds.clear();
    let timeout = collect_interest(slots, timers, timeout, |token, want| {
        let mut events = PollFlags::EMPTY;
        if want.read {
            events |= PollFlags::POLLIN | PollFlags::POLLPRI;
        }
        if want.write {
            events |= PollFlags::POLLOUT;
        }
        pollfds.push(PollFd::new(want.fd, events));
        regs.push(Registration {
            token,
            fd: want.fd,
            too_large: false,
        });
    });
    if slots.len() == 0 {
        // As in `poll`: the map emptied while interest was collected.
        return Ok(control(slots));
    }
    let trace = log::log_enabled!(log::Level::Trace);
    if trace {
        log::trace!(
            "poll(nfds={}, timeout={})",
            pollfds.len(),
            ShowTimeout(timeout)
        );
        for p in pollfds.iter() {
            log::trace!("  pollfd fd={} events={}", p.fd(), p.events());
        }
    }
    let n = sys::poll(pollfds, timeout)?;
    if trace {
        log::trace!("poll -> {n} ready");
        for p in pollfds.iter().filter(|p| !p.revents().is_empty()) {
            log::trace!("  pollfd fd={} revents={}", p.fd(), p.revents());
        }
    }
    for (p, reg) in pollfds.iter().zip(regs.iter()) {
        if slots.exit {
            break;
        }
        let revents = p.revents();
        if !revents.is_empty() {
            dispatch(
                slots,
                reg.token,
                reg.fd,
                Event::Ready(revents),
                Backend::Poll,
            );
        }
    }
    run_timers(slots, timers, Backend::Poll);
    Ok(control(slots))
}

/// The nearer of two waits (`None`: forever).
fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn control(slots: &mut Slots) -> Control {
    if std::mem::take(&mut slots.exit) {
        Control::Exit
    } else {
        Control::Continue
    }
}

struct ShowTimeout(Option<Duration>);

impl fmt::Display for ShowTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none (block)"),
            Some(t) => write!(f, "{:.3}s", t.as_secs_f64()),
        }
    }
}

/// Why [`Loop::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The last channel closed (asyncore's loop ends when the map is empty).
    Empty,
    /// `count` iterations ran.
    Count,
    /// A handler called [`Context::exit`](crate::Context::exit) (asyncore's
    /// `ExitNow`).
    Exit,
    /// A graceful shutdown ([`Context::shutdown`](crate::Context::shutdown))
    /// finished: every channel closed, by itself or at the end of the grace
    /// period.
    Shutdown,
}

/// asyncore's `loop(timeout=30.0, use_poll=False, map=None, count=None)`,
/// as a builder: `Loop::new().timeout(..).use_poll(..).count(..).run(&mut map)`.
///
/// ```
/// use selectloop::{Loop, Map, Stop};
/// use std::time::Duration;
///
/// let mut map = Map::new();
/// let stop = Loop::new()
///     .timeout(Duration::from_millis(10))
///     .use_poll(true)
///     .count(3)
///     .run(&mut map)?;
/// assert_eq!(stop, Stop::Empty); // nothing registered: returns at once
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Loop {
    timeout: Option<Duration>,
    use_poll: bool,
    count: Option<u64>,
}

impl Loop {
    /// asyncore's defaults: a 30 s timeout per iteration, the select
    /// backend, no iteration limit.
    pub fn new() -> Self {
        Loop {
            timeout: Some(Duration::from_secs(30)),
            use_poll: false,
            count: None,
        }
    }

    /// How long one iteration may wait for an event: a `Duration`, or `None`
    /// to block until one arrives. `Duration::ZERO` polls without waiting.
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// `true`: run on poll(2) (asyncore's `poll2`); `false` (the default):
    /// on select(2). On a platform without a usable poll(2) the select
    /// backend is used, as asyncore does.
    pub fn use_poll(mut self, use_poll: bool) -> Self {
        self.use_poll = use_poll;
        self
    }

    /// Stop after `count` iterations (asyncore's `count`).
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Whether this loop runs on poll(2).
    pub fn uses_poll(&self) -> bool {
        self.use_poll && cfg!(selectloop_has_poll)
    }

    /// Runs one iteration on the chosen backend.
    pub fn iterate(&self, map: &mut Map) -> io::Result<Control> {
        if self.uses_poll() {
            poll2(map, self.timeout)
        } else {
            poll(map, self.timeout)
        }
    }

    /// Runs iterations until the map is empty, `count` iterations ran, or a
    /// handler calls [`Context::exit`](crate::Context::exit). An `Err` is a
    /// failure of the syscall itself (e.g. `ENOMEM`), never of one channel:
    /// channel failures go to that channel's handlers.
    pub fn run(&self, map: &mut Map) -> io::Result<Stop> {
        let mut left = self.count;
        loop {
            if map.is_empty() {
                if map.slots.shutdown != ShutdownState::Running {
                    map.slots.shutdown = ShutdownState::Running;
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

impl Default for Loop {
    fn default() -> Self {
        Loop::new()
    }
}
