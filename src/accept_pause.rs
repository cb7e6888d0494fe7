//! The pause of a listener that ran out of file descriptors: one type for
//! the whole rule, so the listener, the loop and the default
//! `handle_accept` agree on it.
//!
//! When `accept` fails with `EMFILE`/`ENFILE` (or `ENOBUFS`/`ENOMEM`), or
//! setting up an accepted connection fails with one of those, the listener
//! leaves the read set until a channel of its map closes (freeing an fd) or
//! [`ACCEPT_BACKOFF`] passes. asyncore closed the listener (the server
//! died); retrying at once would spin, since the listener stays readable
//! while connections wait in the backlog.

use std::io;
use std::time::{Duration, Instant};

/// How long a listener paused for lack of fds stays out of the read set,
/// unless a channel of its map closes first.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Whether `err` means "out of descriptors or kernel memory" (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`): the errors that pause accepting
/// ([`Dispatcher::pause_accepting`](crate::Dispatcher::pause_accepting))
/// instead of failing the listener.
///
/// ```
/// use selectloop::is_fd_shortage;
/// assert!(is_fd_shortage(&std::io::Error::from_raw_os_error(libc::EMFILE)));
/// ```
pub fn is_fd_shortage(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}

/// A listener's pause: since when, and the map's count of removed channels
/// then (a different count later means an fd was freed).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AcceptPause {
    since: Option<Instant>,
    /// The map's removal count when the pause began; `UNSTAMPED` until
    /// the loop has seen it. A plain number, so the loop's check after
    /// every event (is there a fresh pause to stamp?) is one comparison.
    removals: u64,
}

/// The removal count of a pause not yet seen by the loop.
const UNSTAMPED: u64 = u64::MAX;

impl AcceptPause {
    /// Starts (or restarts) a pause now; the loop stamps it with the map's
    /// removal count.
    pub(crate) fn start(&mut self) {
        self.since = Some(Instant::now());
        self.removals = UNSTAMPED;
    }

    /// Ends the pause (an accept succeeded, or the listener closed).
    pub(crate) fn clear(&mut self) {
        self.since = None;
    }

    /// Whether a pause is on (not yet lifted by the loop).
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.since.is_some()
    }

    /// Stamps a fresh pause with the map's removal count from before the
    /// handler ran, so a channel that closes later in the same pass lifts
    /// it at the next one.
    #[inline]
    pub(crate) fn stamp(&mut self, removals: u64) {
        if self.removals == UNSTAMPED {
            self.removals = removals;
        }
    }

    /// The loop's view: stamps a fresh pause, lifts it if a channel closed
    /// since or the backoff passed, and says whether it is still on.
    pub(crate) fn still_on(&mut self, now: Instant, removals: u64) -> bool {
        self.stamp(removals);
        match self.since {
            None => false,
            Some(since) => {
                if self.removals != removals || now.duration_since(since) >= ACCEPT_BACKOFF {
                    self.since = None;
                    false
                } else {
                    true
                }
            }
        }
    }

    /// Time left before the pause ends on its own, so the loop can wake up
    /// to retry.
    pub(crate) fn left(&self, now: Instant) -> Option<Duration> {
        self.since
            .map(|since| ACCEPT_BACKOFF.saturating_sub(now.duration_since(since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_lifts_when_a_channel_closes_or_the_backoff_passes() {
        let mut p = AcceptPause::default();
        assert!(!p.is_on());
        p.start();
        let now = Instant::now();
        assert!(p.still_on(now, 7), "stamped with 7, nothing closed");
        assert!(p.left(now).is_some_and(|d| d <= ACCEPT_BACKOFF));
        assert!(!p.still_on(now, 8), "a channel closed: lifted");
        assert!(!p.is_on());
        p.start();
        assert!(!p.still_on(now + ACCEPT_BACKOFF * 2, 3), "backoff passed");
    }

    #[test]
    fn fd_shortage_errors() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_fd_shortage(&io::Error::from_raw_os_error(code)));
        }
        assert!(!is_fd_shortage(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
    }
}
