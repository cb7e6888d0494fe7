//! Signals as a channel of the loop: [`Signals`] + [`SignalHandler`].
//!
//! # Why not a flag set by a signal handler?
//!
//! The obvious way to notice SIGTERM is a handler that sets a global flag,
//! and a loop that checks the flag. With this crate (and with any careful
//! event loop) that does not work: a signal that arrives while the loop
//! waits in select(2)/poll(2) interrupts the wait with `EINTR`, and the
//! wrappers *retry* the wait with the time that is left, as they must (an
//! `EINTR` surfacing as an error would take the whole loop down for a
//! harmless `SIGWINCH`). So the loop goes back to sleep without looking at
//! the flag, and with `timeout(None)` it may never look at it. Checking the
//! flag before each wait has a window: a signal between the check and the
//! syscall is only noticed at the next wake-up.
//!
//! The way out is the *self-pipe*: the handler, which may only call
//! async-signal-safe functions, writes to a pipe (or an eventfd) whose read
//! end is a channel of the map. The signal becomes an ordinary "readable"
//! event in the very select(2)/poll(2) call the loop makes, with no window.
//! [`Signals`] is that channel:
//!
//! * the OS-level handler (registered with `signal-hook-registry`, which
//!   chains whatever handler was installed before) sets an atomic flag for
//!   the signal and writes the wake-up fd (non-blocking: a full pipe only
//!   means a wake-up is pending already), nothing else;
//! * in the loop, the channel drains the fd, then takes each flag and calls
//!   [`SignalHandler::handle_signal`] once for each signal that was raised.
//!   A signal is never lost; the same signal raised several times between
//!   two iterations may be delivered once (as the kernel itself coalesces
//!   pending signals);
//! * dropping (or closing) the channel unregisters its handlers. When the
//!   last [`Signals`] of the process for a signal goes, the disposition the
//!   crate found before its first registration comes back: `SIG_DFL` (a
//!   SIGTERM ends the process again), `SIG_IGN`, or the old handler function
//!   (chained all along). One limit: a handler that other code registers
//!   through `signal-hook-registry` (or `signal-hook`) for the same signal
//!   *after* the crate's first `Signals` for it stops running once the
//!   default is restored (the registry cannot be asked whether it holds
//!   other actions). Install such handlers first, or keep a `Signals` for
//!   that signal alive.
//!
//! A process-wide setting: every [`Signals`] registered for a signal gets
//! it, so two maps (or two threads) can each have their own.
//!
//! # Example
//!
//! A loop that ends on SIGUSR1 (raised here by the program itself):
//!
//! ```
//! use selectloop::sources::{SignalHandler, Signals};
//! use selectloop::{Context, Loop, Map};
//! use std::io;
//!
//! struct Shutdown {
//!     got: Vec<i32>,
//! }
//!
//! impl SignalHandler for Shutdown {
//!     fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
//!         self.got.push(signal);
//!         cx.exit();
//!         Ok(())
//!     }
//! }
//!
//! let mut map = Map::new();
//! let token = map.add(Signals::new(&[libc::SIGUSR1, libc::SIGUSR2])?, Shutdown { got: Vec::new() });
//! nix::sys::signal::raise(nix::sys::signal::Signal::SIGUSR1)?;
//! Loop::new().timeout(None).run(&mut map)?; // blocks until the signal is handled
//! assert_eq!(map.handler_mut(token).unwrap().got, [libc::SIGUSR1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Without a map (the raw `select_server`/`poll_server` examples): put
//! [`Signals::fileno`] in your read set, and when it is readable, take
//! [`Signals::raised`].

use crate::dispatcher::Dispatcher;
use crate::handler::{DispatcherType, Handler};
use crate::sys::signal::{self as sys_signal, SignalRegistration, SignalSink};
use crate::sys::wake::WakeWriter;
use crate::Context;
use crate::Predicates;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A set of signals, delivered as events of the loop (the self-pipe
/// pattern, done once and right). Register it with a [`SignalHandler`]:
/// `map.add(Signals::new(&[libc::SIGINT, libc::SIGTERM])?, handler)`.
///
/// See the [module docs](self) for why this is the way to handle signals in
/// an event loop.
pub struct Signals {
    inner: Dispatcher,
    signals: Box<[i32]>,
    sink: Arc<SignalSink>,
    registrations: Vec<SignalRegistration>,
}

/// Raises one signal of a [`Signals`] channel from inside the process, as
/// if the OS had delivered it (see [`Signals::local_raiser`]).
pub(crate) struct LocalRaiser {
    sink: Arc<SignalSink>,
    index: usize,
}

impl LocalRaiser {
    pub(crate) fn raise(&self) {
        self.sink.raised[self.index].store(true, Ordering::SeqCst);
        if let Err(e) = self.sink.wake.wake() {
            log::warn!("cannot wake a signal channel: {e}");
        }
    }
}

impl Signals {
    /// Registers `signals` (`libc::SIGINT`, `libc::SIGTERM`,
    /// ... : the numbers come from the `libc` crate, which your crate
    /// depends on for them; duplicates are ignored): from now on each of
    /// them, when
    /// raised, is recorded and wakes the loop. Fails (kind `InvalidInput`)
    /// for `SIGKILL`, `SIGSTOP`, `SIGILL`, `SIGFPE`, `SIGSEGV` and numbers
    /// that are not signals.
    pub fn new(signals: &[i32]) -> io::Result<Self> {
        let mut list: Vec<i32> = Vec::with_capacity(signals.len());
        for &s in signals {
            if !list.contains(&s) {
                list.push(s);
            }
        }
        let (wake, reader) = WakeWriter::new()?;
        let inner = Dispatcher::file_dispatcher(&reader)?;
        drop(reader); // the dispatcher holds its own duplicate
        let sink = Arc::new(SignalSink {
            raised: list.iter().map(|_| AtomicBool::new(false)).collect(),
            wake,
        });
        let mut registrations = Vec::with_capacity(list.len());
        for (index, &signal) in list.iter().enumerate() {
            // On an error, the ones registered so far are dropped with the
            // vector: unregistered.
            registrations.push(sys_signal::register(signal, &sink, index)?);
        }
        Ok(Signals {
            inner,
            signals: list.into_boxed_slice(),
            sink,
            registrations,
        })
    }

    /// The registered signals, in the order given.
    pub fn signals(&self) -> &[i32] {
        &self.signals
    }

    /// The fd the loop watches (readable when a signal arrived); `None`
    /// once closed. For loops written by hand on [`crate::sys`].
    pub fn fileno(&self) -> Option<RawFd> {
        self.inner.fileno()
    }

    /// Takes the signals raised since the last call: drains the wake-up fd,
    /// then yields each registered signal whose flag was set (clearing it).
    /// Allocates nothing. A signal that arrives while the iterator runs is
    /// either yielded now or wakes the fd again: never lost.
    pub fn raised(&mut self) -> Raised<'_> {
        self.drain();
        Raised {
            signals: &self.signals,
            flags: &self.sink.raised,
            next: 0,
        }
    }

    /// Whether a raised signal is still waiting to be taken.
    fn any_raised(&self) -> bool {
        self.sink.raised.iter().any(|f| f.load(Ordering::SeqCst))
    }

    /// Makes the channel readable again (a delivery was cut short).
    fn rewake(&self) {
        if let Err(e) = self.sink.wake.wake() {
            log::warn!("{self:?}: cannot re-arm the wake-up: {e}");
        }
    }

    /// A handle that raises `signal` on this channel from inside the
    /// process ([`raise_locally`](Self::raise_locally)), usable after the
    /// channel has moved into the map.
    pub(crate) fn local_raiser(&self, signal: i32) -> Option<LocalRaiser> {
        let index = self.signals.iter().position(|&s| s == signal)?;
        Some(LocalRaiser {
            sink: Arc::clone(&self.sink),
            index,
        })
    }

    /// Records `signal` as raised and wakes the channel, as the OS-level
    /// handler would (the child source uses it to look at its child once
    /// right after the spawn).
    pub(crate) fn raise_locally(&self, signal: i32) {
        if let Some(i) = self.signals.iter().position(|&s| s == signal) {
            self.sink.raised[i].store(true, Ordering::SeqCst);
            self.rewake();
        }
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 64];
        loop {
            match self.inner.recv(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log::debug!("{self:?}: draining the wake-up fd: {e}");
                    break;
                }
            }
        }
        // recv returning 0 would mean "peer closed"; the write end lives in
        // the sink, so it cannot happen, and must not close the channel.
        self.inner.take_close_pending();
    }

    /// Closes the channel and unregisters its signals now (dropping it does
    /// the same).
    pub fn close(&mut self) {
        self.registrations.clear();
        self.inner.close();
    }
}

/// The signals taken by [`Signals::raised`].
pub struct Raised<'a> {
    signals: &'a [i32],
    flags: &'a [AtomicBool],
    next: usize,
}

impl Iterator for Raised<'_> {
    type Item = i32;
    fn next(&mut self) -> Option<i32> {
        while self.next < self.signals.len() {
            let i = self.next;
            self.next += 1;
            if self
                .flags
                .get(i)
                .is_some_and(|f| f.swap(false, Ordering::SeqCst))
            {
                return Some(self.signals[i]);
            }
        }
        None
    }
}

/// A signal's name (`SIGINT`), or its number.
pub(crate) fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Signals")?;
        for (i, &s) in self.signals.iter().enumerate() {
            let sep = if i == 0 { " " } else { "," };
            write!(f, "{sep}{}", signal_name(s))?;
        }
        match self.inner.fileno() {
            Some(fd) => write!(f, " fd={fd}>"),
            None => write!(f, " closed>"),
        }
    }
}

impl DispatcherType for Signals {
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    fn default_writable(&self) -> bool {
        false
    }
    fn default_handle_write(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn close(&mut self) {
        Signals::close(self)
    }
    /// `signals SIGINT,SIGTERM` in the loop's trace.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("signals")?;
        for (i, &s) in self.signals.iter().enumerate() {
            let sep = if i == 0 { " " } else { "," };
            write!(f, "{sep}{}", signal_name(s))?;
        }
        Ok(())
    }
}

/// What a [`Signals`] channel calls: implement it and register the pair
/// with `map.add(Signals::new(&[...])?, handler)` (every `SignalHandler` is
/// a [`Handler<Signals>`](crate::Handler)).
#[allow(unused_variables)]
pub trait SignalHandler: 'static {
    /// `signal` (a number such as `libc::SIGTERM`) was raised at least once
    /// since the last call for it. Runs in the loop, like any handler: it
    /// may do anything (log, close channels, `cx.exit()`). An `Err` goes to
    /// [`handle_error`](Self::handle_error); signals not yet delivered in
    /// this pass come in the next one.
    fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()>;

    /// A graceful shutdown started ([`Context::shutdown`]). Default: close
    /// the channel, like every plain channel (its signals get their
    /// previous disposition back, so a second SIGINT during the grace
    /// period ends the process as it did before). Override it to keep
    /// handling signals until the loop ends.
    fn handle_shutdown(&mut self, ch: &mut Signals, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        Ok(())
    }

    /// `handle_signal` failed. Default (asyncore's rule): log it and close
    /// the channel, which unregisters its signals.
    fn handle_error(&mut self, ch: &mut Signals, err: io::Error, cx: &mut Context<'_>) {
        log::error!("{ch:?}: uncaptured error: {err}; closing");
        ch.close();
    }
}

impl<T: SignalHandler> Handler<Signals> for T {
    /// Always readable, never writable: the loop need not ask each pass.
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;
    fn readable(&mut self, _ch: &Signals) -> bool {
        true
    }
    fn writable(&mut self, _ch: &Signals) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Signals, cx: &mut Context<'_>) -> io::Result<()> {
        let fd = ch.fileno().unwrap_or(-1);
        let mut result = Ok(());
        for signal in ch.raised() {
            log::trace!("fd {fd}: {} -> handle_signal", signal_name(signal));
            result = self.handle_signal(signal, cx);
            if result.is_err() || cx.stopping() {
                break;
            }
        }
        if ch.any_raised() && !ch.inner.is_closed() {
            ch.rewake(); // cut short: the rest comes next pass
        }
        result
    }
    fn handle_close(&mut self, ch: &mut Signals, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        Ok(())
    }
    fn handle_shutdown(&mut self, ch: &mut Signals, cx: &mut Context<'_>) -> io::Result<()> {
        SignalHandler::handle_shutdown(self, ch, cx)
    }
    fn handle_error(&mut self, ch: &mut Signals, err: io::Error, cx: &mut Context<'_>) {
        SignalHandler::handle_error(self, ch, err, cx)
    }
}
