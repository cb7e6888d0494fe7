//! [`Timer`]: a channel with a deadline and no fd (Twisted's `callLater`
//! and `LoopingCall`, calloop's timer source).

use crate::dispatcher::Dispatcher;
use crate::handler::DispatcherType;
use std::fmt;
use std::time::{Duration, Instant};

/// A channel that has no fd, only a deadline: registered like any other
/// channel, its handler's [`handle_timeout`](crate::Handler::handle_timeout)
/// runs when the deadline passes.
///
/// * One-shot: [`Timer::after`] / [`Timer::at`]. After it fired, a timer
///   whose handler did not set a new deadline has nothing left to wait
///   for and leaves the map (so a loop whose last work was a timer ends).
/// * Repeating: [`Timer::every`]; it stays until cancelled.
/// * Cancel: [`cancel`](Self::cancel) (or `cx.close(token)` /
///   `map.close(token)`); re-arm: [`set_timeout`](Dispatcher::set_timeout)
///   through `Deref`.
///
/// Armed timers keep [`Loop::run`](crate::Loop::run) going: they are
/// channels of the map, and the loop ends only when the map is empty.
///
/// ```
/// use selectloop::{Context, Handler, Loop, Map, Timer};
/// use std::io;
/// use std::time::Duration;
///
/// struct Tick(u32);
///
/// impl Handler<Timer> for Tick {
///     fn handle_timeout(&mut self, timer: &mut Timer, _cx: &mut Context<'_>) -> io::Result<()> {
///         self.0 += 1;
///         if self.0 == 3 {
///             timer.cancel(); // leaves the map: the loop ends
///         }
///         Ok(())
///     }
/// }
///
/// let mut map = Map::new();
/// map.add(Timer::every(Duration::from_millis(1)), Tick(0));
/// Loop::new().run(&mut map)?; // a timer-only loop
/// assert!(map.is_empty());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Timer {
    inner: Dispatcher,
}

impl Timer {
    /// Fires once, `delay` from now.
    pub fn after(delay: Duration) -> Self {
        let mut inner = Dispatcher::without_fd();
        inner.set_timeout(delay);
        Timer { inner }
    }

    /// Fires once, at `when`.
    pub fn at(when: Instant) -> Self {
        let mut inner = Dispatcher::without_fd();
        inner.set_deadline(Some(when));
        Timer { inner }
    }

    /// Fires every `period`, the first time `period` from now (see
    /// [`Dispatcher::set_interval`] for a zero or huge period).
    pub fn every(period: Duration) -> Self {
        let mut inner = Dispatcher::without_fd();
        inner.set_interval(period);
        Timer { inner }
    }

    /// Stops the timer: it fires no more and leaves the map.
    pub fn cancel(&mut self) {
        self.inner.close();
    }
}

impl std::ops::Deref for Timer {
    type Target = Dispatcher;
    fn deref(&self) -> &Dispatcher {
        &self.inner
    }
}

impl std::ops::DerefMut for Timer {
    fn deref_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
}

impl DispatcherType for Timer {
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    fn default_readable(&self) -> bool {
        false
    }
    fn default_writable(&self) -> bool {
        false
    }
}

/// `<Timer due in 0.250s>`, `<Timer idle>`, `<Timer closed>`.
impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inner.is_closed() {
            return f.write_str("<Timer closed>");
        }
        match self.inner.deadline() {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                write!(f, "<Timer due in {:.3}s>", left.as_secs_f64())
            }
            None => f.write_str("<Timer idle>"),
        }
    }
}
