//! Timeouts as the two syscalls want them, and the deadline that makes an
//! `EINTR` retry wait only for the time that is left.

use std::time::{Duration, Instant};

/// The end of a wait, fixed when the wait starts.
///
/// A syscall interrupted by a signal (`EINTR`) is retried with
/// [`Deadline::remaining`], so a stream of signals can never stretch a wait
/// past its timeout, as restarting with the full timeout would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    end: Option<Instant>,
}

impl Deadline {
    /// A deadline `timeout` from now; `None` never expires (block).
    ///
    /// A timeout too large to add to `Instant::now()` is treated as `None`.
    pub fn after(timeout: Option<Duration>) -> Self {
        let end = timeout.and_then(|t| Instant::now().checked_add(t));
        Deadline { end }
    }

    /// The time left until the deadline: `None` for a deadline that never
    /// expires, `Some(Duration::ZERO)` once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.end
            .map(|end| end.saturating_duration_since(Instant::now()))
    }
}

/// The longest wait passed to the kernel in one call: about 24.8 days, the
/// largest number of milliseconds poll(2) accepts (`i32::MAX`). select(2) is
/// clamped to the same value so both backends behave alike; a longer wait is
/// simply a retry after this much time, which the loop does anyway.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(i32::MAX as u64);

/// A poll(2) timeout in milliseconds: `-1` blocks, sub-millisecond timeouts
/// round *up* (500 µs must not become a 0 ms busy loop), huge ones clamp to
/// `i32::MAX` instead of wrapping negative (which would mean "forever").
pub(crate) fn poll_millis(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let t = t.min(MAX_WAIT);
            let mut ms = t.as_millis();
            if Duration::from_millis(ms as u64) < t {
                ms += 1;
            }
            // t <= MAX_WAIT, so ms <= i32::MAX; the min is belt and braces.
            ms.min(i32::MAX as u128) as libc::c_int
        }
    }
}

/// A select(2) timeout: `None` (block) stays `None`; a huge timeout clamps
/// to [`MAX_WAIT`]; a fraction of a microsecond rounds *up* (1 ns must not
/// become a zero timeval, which returns at once: a busy loop).
pub(crate) fn select_timeval(timeout: Option<Duration>) -> Option<libc::timeval> {
    timeout.map(|t| {
        let t = t.min(MAX_WAIT);
        let mut secs = t.as_secs();
        let mut usec = t.subsec_nanos().div_ceil(1000);
        if usec == 1_000_000 {
            secs += 1;
            usec = 0;
        }
        libc::timeval {
            tv_sec: secs as libc::time_t,
            tv_usec: usec as libc::suseconds_t,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_timeout_none_blocks() {
        assert_eq!(poll_millis(None), -1);
    }

    #[test]
    fn poll_timeout_zero_returns_at_once() {
        assert_eq!(poll_millis(Some(Duration::ZERO)), 0);
    }

    #[test]
    fn poll_timeout_sub_millisecond_rounds_up() {
        assert_eq!(poll_millis(Some(Duration::from_micros(500))), 1);
        assert_eq!(poll_millis(Some(Duration::from_nanos(1))), 1);
        assert_eq!(poll_millis(Some(Duration::from_micros(1500))), 2);
        assert_eq!(poll_millis(Some(Duration::from_millis(7))), 7);
    }

    #[test]
    fn poll_timeout_huge_clamps_instead_of_wrapping_negative() {
        assert_eq!(poll_millis(Some(Duration::from_secs(u64::MAX))), i32::MAX);
        assert_eq!(poll_millis(Some(Duration::MAX)), i32::MAX);
        assert_eq!(
            poll_millis(Some(Duration::from_millis(i32::MAX as u64 + 1))),
            i32::MAX
        );
    }

    #[test]
    fn select_timeout_keeps_microseconds_and_clamps() {
        let tv = select_timeval(Some(Duration::from_micros(1_500_250))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (1, 500_250));
        assert!(select_timeval(None).is_none());
        let tv = select_timeval(Some(Duration::from_nanos(1))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1), "sub-microsecond rounds up");
        let tv = select_timeval(Some(Duration::new(2, 999_999_001))).unwrap();
        assert_eq!(
            (tv.tv_sec, tv.tv_usec),
            (3, 0),
            "rounding carries into seconds"
        );
        let tv = select_timeval(Some(Duration::ZERO)).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 0), "zero stays zero");
        let huge = select_timeval(Some(Duration::MAX)).unwrap();
        assert_eq!(huge.tv_sec as u64, MAX_WAIT.as_secs());
    }

    #[test]
    fn deadline_remaining_counts_down_and_never_goes_negative() {
        let d = Deadline::after(Some(Duration::from_millis(50)));
        let left = d.remaining().unwrap();
        assert!(left <= Duration::from_millis(50));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(d.remaining(), Some(Duration::ZERO));
        assert_eq!(Deadline::after(None).remaining(), None);
        assert_eq!(Deadline::after(Some(Duration::MAX)).remaining(), None);
    }
}
