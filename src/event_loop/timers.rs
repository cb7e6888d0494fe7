//! The loop's timer queue: which channel's deadline comes next.
//!
//! A binary heap of `(when, token)`. Each channel has at most one live
//! entry ([`Deadline::queued`]); a deadline pushed *later* keeps its entry
//! (when the entry comes up, the later deadline is queued again), so an idle
//! timeout pushed back on every read costs a comparison, not a heap
//! operation. A deadline moved *earlier* gets a new entry and the old one
//! goes stale (skipped when it comes up; a closed channel's entry is
//! dropped as soon as it heads the queue, so that it does not shorten the
//! wait). The heap keeps its capacity, so
//! timers firing and re-arming allocate nothing in steady state; deadlines
//! that are not due cost nothing per iteration but a peek.

use crate::deadline::Deadline;
use crate::map::Token;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, Token)>>,
}

impl TimerQueue {
    /// Makes sure channel `token`'s deadline has an entry no later than it.
    #[inline]
    pub(crate) fn sync(&mut self, token: Token, d: &mut Deadline) {
        if let Some(due) = d.due {
            if d.queued.map_or(true, |q| due < q) {
                self.heap.push(Reverse((due, token)));
                d.queued = Some(due);
            }
        }
    }

    /// The earliest entry's time (maybe stale: then the loop wakes a little
    /// early and finds nothing due).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((when, _))| *when)
    }

    /// Drops the earliest entries whose channel is gone (`live` says no), so
    /// that a closed channel's deadline does not cut the next wait short.
    pub(crate) fn drop_gone(&mut self, live: impl Fn(Token) -> bool) {
        while let Some(Reverse((_, token))) = self.heap.peek() {
            if live(*token) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Takes the earliest entry if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Token)> {
        match self.heap.peek() {
            Some(Reverse((when, _))) if *when <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Decides what a popped entry means for the channel's deadline `d`:
    /// `true` if the deadline is due now and must fire (it is then moved on
    /// by [`Deadline::fire`]); stale entries and deadlines pushed back are
    /// dealt with here.
    pub(crate) fn take_due(
        &mut self,
        when: Instant,
        token: Token,
        d: &mut Deadline,
        now: Instant,
    ) -> bool {
        if d.queued != Some(when) {
            return false; // stale: the deadline moved earlier, another entry stands for it
        }
        d.queued = None;
        match d.due {
            None => false,
            Some(due) if due > now => {
                self.sync(token, d); // pushed back meanwhile
                false
            }
            Some(_) => {
                d.fire(now);
                true
            }
        }
    }
}
