//! A channel's deadline: the state behind
//! [`Dispatcher::set_deadline`](crate::Dispatcher::set_deadline) and
//! [`Handler::handle_timeout`](crate::Handler::handle_timeout).

use std::time::{Duration, Instant};

/// When a channel's `handle_timeout` is due, and how the loop's timer queue
/// knows about it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Deadline {
    /// When `handle_timeout` is due; `None`: never.
    pub(crate) due: Option<Instant>,
    /// Re-arm by this much after each firing ([`set_interval`](crate::Dispatcher::set_interval)).
    pub(crate) period: Option<Duration>,
    /// The time of this channel's live entry in the loop's timer queue, if
    /// it has one. Pushing `due` back (an idle timeout on every read) leaves
    /// the entry where it is: when it comes up, the loop sees the later
    /// `due` and queues it again. Only a `due` earlier than `queued` needs a
    /// new entry.
    pub(crate) queued: Option<Instant>,
}

impl Deadline {
    /// Whether `due` is earlier than the loop's timer queue knows (it
    /// must be queued again).
    #[inline]
    pub(crate) fn needs_queueing(&self) -> bool {
        self.due
            .is_some_and(|due| self.queued.map_or(true, |q| due < q))
    }

    /// The deadline fired at `now`: the next one for an interval (missed
    /// periods skipped), none otherwise.
    pub(crate) fn fire(&mut self, now: Instant) {
        self.due = match (self.due, self.period) {
            (Some(due), Some(period)) if !period.is_zero() => {
                let mut next = later(due, period);
                if next <= now {
                    // Late: skip the missed periods instead of a burst.
                    let behind = now.duration_since(due).as_nanos() / period.as_nanos();
                    let skip = u32::try_from(behind).unwrap_or(u32::MAX).saturating_add(1);
                    next = later(due, period.saturating_mul(skip));
                }
                Some(next)
            }
            (Some(_), Some(_)) => Some(now),
            _ => None,
        };
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn after(d: Duration) -> Instant {
    later(Instant::now(), d)
}

/// `t + d`, or a hundred years after `t` where that sum would overflow
/// (`Duration::MAX` as a period or a timeout means "never", in effect).
pub(crate) fn later(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d)
        .or_else(|| t.checked_add(FAR.min(d)))
        .unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_clears_and_interval_advances_by_whole_periods() {
        let t0 = Instant::now();
        let mut d = Deadline {
            due: Some(t0),
            ..Deadline::default()
        };
        d.fire(t0);
        assert_eq!(d.due, None);
        let p = Duration::from_millis(10);
        let mut d = Deadline {
            due: Some(t0),
            period: Some(p),
            queued: None,
        };
        d.fire(t0);
        assert_eq!(d.due, Some(t0 + p));
        // 35 ms late: the next deadline is the first period boundary after now.
        d.fire(t0 + Duration::from_millis(45));
        assert_eq!(d.due, Some(t0 + Duration::from_millis(50)));
    }

    #[test]
    fn a_huge_period_or_timeout_saturates_instead_of_overflowing() {
        let t0 = Instant::now();
        for late in [Duration::ZERO, Duration::from_secs(3)] {
            let mut d = Deadline {
                due: Some(t0),
                period: Some(Duration::MAX),
                queued: None,
            };
            d.fire(t0 + late);
            assert!(d
                .due
                .is_some_and(|due| due > t0 + Duration::from_secs(3600)));
        }
        assert!(after(Duration::MAX) > Instant::now() + Duration::from_secs(3600));
        assert!(later(t0, Duration::from_secs(1)) == t0 + Duration::from_secs(1));
    }
}
