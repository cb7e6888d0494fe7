//! The backends: one small interface, one file per syscall
//! ([`select`], [`poll`], and on Linux
//! [`epoll`]), the way mio gives every selector the same
//! shape. The loop ([`crate::event_loop`]) runs one generic iteration over
//! this interface; adding a backend is one new file here.
//!
//! A backend keeps the kernel's view of what each channel wants between
//! iterations and is told only what *changed*: the `pollfd` array and the
//! `fd_set`s are updated in place, epoll's interest set with `epoll_ctl`.

#[cfg(target_os = "linux")]
pub(crate) mod epoll;
pub(crate) mod poll;
pub(crate) mod readiness;
pub(crate) mod select;

use crate::map::Token;
use crate::sys::FdSetSizeError;
use readiness::{IterTrace, Readiness};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The channels a backend watches, in the order they were registered, so
/// ready channels are served in that order (asyncore serves them in map
/// order), whatever their fd numbers.
///
/// A channel that leaves is marked dead where it stands (no shifting);
/// once the dead outnumber the living, the list is compacted in place.
#[derive(Default)]
pub(crate) struct Registered {
    /// `tokens[i]` is the channel at position `i` (`None`: dead).
    pub(crate) tokens: Vec<Option<Token>>,
    /// Its fd.
    pub(crate) fds: Vec<RawFd>,
    /// Slot index → position, or `ABSENT`.
    pos: Vec<u32>,
    dead: usize,
}

const ABSENT: u32 = u32::MAX;

impl Registered {
    /// The position of channel `t`, if registered.
    pub(crate) fn position(&self, t: Token) -> Option<usize> {
        match self.pos.get(t.index()) {
            Some(&p) if p != ABSENT && self.tokens[p as usize] == Some(t) => Some(p as usize),
            _ => None,
        }
    }

    /// Appends channel `t` with `fd`; returns its position.
    pub(crate) fn push(&mut self, t: Token, fd: RawFd) -> usize {
        if self.pos.len() <= t.index() {
            self.pos.resize(t.index() + 1, ABSENT);
        }
        let at = self.tokens.len();
        self.pos[t.index()] = at as u32;
        self.tokens.push(Some(t));
        self.fds.push(fd);
        at
    }

    /// Marks position `at` dead. Returns whether the list should now be
    /// compacted.
    pub(crate) fn kill(&mut self, at: usize) -> bool {
        if let Some(t) = self.tokens[at].take() {
            self.pos[t.index()] = ABSENT;
        }
        self.dead += 1;
        self.dead > 16 && self.dead * 2 > self.tokens.len()
    }

    /// Whether any entry is dead.
    pub(crate) fn has_dead(&self) -> bool {
        self.dead > 0
    }

    /// Drops the dead entries, keeping the order of the living; `moved(from,
    /// to)` is told of each entry that moves, for arrays kept alongside.
    pub(crate) fn compact(&mut self, mut moved: impl FnMut(usize, usize)) {
        let mut to = 0;
        for from in 0..self.tokens.len() {
            if let Some(t) = self.tokens[from] {
                if from != to {
                    self.tokens[to] = Some(t);
                    self.fds[to] = self.fds[from];
                    self.pos[t.index()] = to as u32;
                    moved(from, to);
                }
                to += 1;
            }
        }
        self.tokens.truncate(to);
        self.fds.truncate(to);
        self.dead = 0;
    }
}

/// What a channel asks the kernel to watch its fd for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    /// Readable (and, as asyncore asks, exceptional: `POLLPRI`).
    pub(crate) read: bool,
    /// Writable.
    pub(crate) write: bool,
}

impl Interest {
    pub(crate) const NONE: Interest = Interest {
        read: false,
        write: false,
    };

    pub(crate) fn is_none(self) -> bool {
        !self.read && !self.write
    }
}

/// Why a backend could not watch an fd.
#[derive(Debug)]
pub(crate) enum RegisterError {
    /// select(2) cannot watch an fd this large.
    FdTooLarge(FdSetSizeError),
    /// The fd is not open (closed behind its channel's back).
    Closed(&'static str),
    /// Anything else the kernel refused (`ENOMEM`, `ENOSPC`).
    Other(io::Error),
}

/// How a wait ended.
pub(crate) enum Waited {
    /// This many fds are ready (0: the timeout passed).
    Ready(usize),
    /// select(2) failed with `EBADF`: a registered fd was closed behind its
    /// channel's back; the loop finds which with [`Selector::for_each_registered`].
    BadFd,
}

/// The interface every backend implements.
pub(crate) trait Selector {
    /// Whether the kernel's copy of the interest belongs to the open file
    /// rather than to the fd number (epoll): closing the number does not
    /// drop it while a `dup` of it lives, and nothing can drop it by number
    /// any more. When a channel's dispatcher is replaced (a new fd, or a
    /// new socket at the old number), the loop then rebuilds the whole set
    /// rather than risk the old file's events reaching the channel under
    /// its new fd.
    const WATCHES_FILES: bool = false;

    /// Changes what `fd` (channel `token`) is watched for, from `old` to
    /// `new` (either may be [`Interest::NONE`]: start or stop watching).
    fn set_interest(
        &mut self,
        token: Token,
        fd: RawFd,
        old: Interest,
        new: Interest,
    ) -> Result<(), RegisterError>;

    /// Stops watching channel `token` for good (it left the map; its fd,
    /// registered for `old`, may already be closed).
    fn deregister(&mut self, token: Token, fd: RawFd, old: Interest);

    /// Waits for readiness or `timeout`, tracing the call and its result
    /// in the syscall's own terms when `trace` is on.
    fn wait(&mut self, timeout: Option<Duration>, trace: Option<&IterTrace>) -> io::Result<Waited>;

    /// Calls `f(token, fd, readiness)` for each ready fd of the last wait,
    /// until `f` returns `false`.
    fn for_each_ready(&self, f: impl FnMut(Token, RawFd, Readiness) -> bool);

    /// Calls `f(token, fd)` for every watched fd (to find a closed one
    /// after [`Waited::BadFd`]).
    fn for_each_registered(&self, f: impl FnMut(Token, RawFd));
}
