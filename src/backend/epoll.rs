//! The epoll(7) backend (Linux): the interest set lives in the kernel.
//!
//! `epoll_ctl` is called only when a channel's interest changes (ADD when
//! it starts asking, MOD when what it asks changes, DEL when it stops — an
//! fd that asks for nothing is not left registered with no events, since
//! epoll would still report its `EPOLLHUP` and spin the loop). A wait
//! returns only the ready fds, so an iteration costs in proportion to them,
//! not to every fd watched. Level-triggered, like select and poll: the same
//! event rules, the same `handle_*` calls for the same readiness.
//!
//! Two differences the backend hides:
//! * epoll refuses regular files (`EPERM`): they are always ready for
//!   reading and writing, so the backend reports them ready after every
//!   wait, exactly as poll(2) does (and then waits with a zero timeout).
//! * epoll has no `POLLNVAL`: an fd closed behind its channel's back is
//!   seen when it is registered (`EBADF` from `epoll_ctl`), and delivered
//!   as select's `EBADF` and poll's `POLLNVAL` are.

use super::readiness::{IterTrace, Readiness, ShowTimeout, Syscall};
use super::{Interest, RegisterError, Selector, Waited};
use crate::map::Token;
use crate::sys::{Epoll, EpollEvent, PollFlags};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Wait for at most this many ready fds at once; the rest (level-triggered)
/// are reported by the next wait.
const MAX_EVENTS: usize = 1024;

pub(crate) struct EpollSelector {
    epoll: Epoll,
    /// The buffer epoll_wait fills; grows with the number of watched fds
    /// (up to MAX_EVENTS), never per iteration.
    events: Vec<EpollEvent>,
    /// How many entries the last wait filled.
    ready: usize,
    /// How many fds are registered with the kernel.
    registered: usize,
    /// Regular files (epoll refuses them): always ready for what they ask.
    always_ready: Vec<(Token, RawFd, Interest)>,
    /// Slot index → the fd registered for it (epoll reports the token).
    fds: Vec<RawFd>,
}

impl EpollSelector {
    pub(crate) fn new() -> io::Result<EpollSelector> {
        Ok(EpollSelector {
            epoll: Epoll::new()?,
            events: vec![EpollEvent::empty(); 16],
            ready: 0,
            registered: 0,
            always_ready: Vec::new(),
            fds: Vec::new(),
        })
    }

    fn fd_of(&self, t: Token) -> RawFd {
        self.fds.get(t.index()).copied().unwrap_or(-1)
    }
}

fn epoll_events(want: Interest) -> u32 {
    let mut e = 0;
    if want.read {
        e |= (libc::EPOLLIN | libc::EPOLLPRI) as u32;
    }
    if want.write {
        e |= libc::EPOLLOUT as u32;
    }
    e
}

/// `EPOLLIN|EPOLLPRI` as the trace shows it.
struct ShowEvents(u32);

impl std::fmt::Display for ShowEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = Readiness {
            flags: PollFlags::from_bits(self.0 as libc::c_short),
            syscall: Syscall::Epoll,
        };
        r.fmt(f)
    }
}

/// The readiness of a regular file (which epoll refuses to watch): what
/// it asks for, at once, as poll(2) reports it.
fn always_ready(want: Interest) -> Readiness {
    let mut flags = PollFlags::EMPTY;
    if want.read {
        flags |= PollFlags::POLLIN;
    }
    if want.write {
        flags |= PollFlags::POLLOUT;
    }
    Readiness {
        flags,
        syscall: Syscall::Epoll,
    }
}

impl Selector for EpollSelector {
    const WATCHES_FILES: bool = true;

    fn set_interest(
        &mut self,
        token: Token,
        fd: RawFd,
        old: Interest,
        new: Interest,
    ) -> Result<(), RegisterError> {
        if let Some(i) = self.always_ready.iter().position(|e| e.0 == token) {
            if new.is_none() {
                self.always_ready.swap_remove(i);
            } else {
                self.always_ready[i].2 = new;
            }
            return Ok(());
        }
        let (op, result) = match (old.is_none(), new.is_none()) {
            (true, true) => return Ok(()),
            (true, false) => (
                "EPOLL_CTL_ADD",
                self.epoll.add(fd, epoll_events(new), token.to_u64()),
            ),
            (false, false) => (
                "EPOLL_CTL_MOD",
                self.epoll.modify(fd, epoll_events(new), token.to_u64()),
            ),
            (false, true) => ("EPOLL_CTL_DEL", self.epoll.delete(fd)),
        };
        match &result {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && old.is_none() => log::trace!(
                "epoll_ctl({op}, fd={fd}, events={}) -> {e}: a regular file, always ready (as poll(2) reports it)",
                ShowEvents(epoll_events(new))
            ),
            _ => log::trace!(
                "epoll_ctl({op}, fd={fd}, events={})",
                ShowEvents(epoll_events(new))
            ),
        }
        match result {
            Ok(()) => {
                let slot = token.index();
                if self.fds.len() <= slot {
                    self.fds.resize(slot + 1, -1);
                }
                self.fds[slot] = fd;
                match (old.is_none(), new.is_none()) {
                    (true, false) => self.registered += 1,
                    (false, true) => self.registered -= 1,
                    _ => {}
                }
                if self.events.len() < self.registered.min(MAX_EVENTS) {
                    self.events.resize(
                        self.registered.next_power_of_two().min(MAX_EVENTS),
                        EpollEvent::empty(),
                    );
                }
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && old.is_none() => {
                // A regular file: always ready, as poll(2) reports it.
                self.always_ready.push((token, fd, new));
                Ok(())
            }
            Err(e) if new.is_none() => {
                // Stopping to watch an fd that is already closed (the kernel
                // dropped it then): nothing left to undo.
                log::trace!("epoll_ctl({op}, fd={fd}) -> {e}, ignored");
                if old.is_none() {
                    return Ok(());
                }
                self.registered -= 1;
                Ok(())
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOENT)) => {
                if !old.is_none() {
                    self.registered -= 1;
                }
                Err(RegisterError::Closed("EBADF from epoll_ctl"))
            }
            Err(e) => Err(RegisterError::Other(e)),
        }
    }

    fn deregister(&mut self, token: Token, fd: RawFd, old: Interest) {
        // A channel leaves the map, or trades its fd, only by closing it,
        // and closing an fd drops its epoll entry: no epoll_ctl. By number,
        // EPOLL_CTL_DEL could only fail (EBADF), or remove the entry of a
        // newcomer that got the same number. If a dup keeps the file open,
        // the kernel keeps its entry; its first event finds no channel and
        // the loop rebuilds the set (see the loop's orphan check).
        if let Some(i) = self.always_ready.iter().position(|e| e.0 == token) {
            self.always_ready.swap_remove(i);
            return;
        }
        if !old.is_none() {
            log::trace!("fd {fd}: closed, so epoll dropped it (no epoll_ctl)");
            self.registered -= 1;
        }
    }

    fn wait(&mut self, timeout: Option<Duration>, trace: Option<&IterTrace>) -> io::Result<Waited> {
        let timeout = if self.always_ready.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        if let Some(t) = trace {
            log::trace!(
                "{} iteration {}: epoll_wait(maxevents={}, timeout={})",
                t.stamp(),
                t.iteration,
                self.events.len(),
                ShowTimeout(timeout)
            );
        }
        let n = self.epoll.wait(&mut self.events, timeout)?;
        self.ready = n;
        if let Some(t) = trace {
            let why = if n == 0 { " (timeout)" } else { "" };
            let always = self.always_ready.len();
            if always == 0 {
                log::trace!("{} epoll_wait -> {n} ready{why}", t.stamp());
            } else {
                log::trace!(
                    "{} epoll_wait -> {n} ready{why}; and {always} always ready (regular files, not in the epoll set)",
                    t.stamp()
                );
            }
            for e in &self.events[..n] {
                log::trace!(
                    "  fd={} events={}",
                    self.fd_of(Token::from_u64(e.data())),
                    ShowEvents(e.events())
                );
            }
            for &(_, fd, want) in &self.always_ready {
                log::trace!("  fd={fd} events={}", always_ready(want));
            }
        }
        Ok(Waited::Ready(n + self.always_ready.len()))
    }

    fn for_each_ready(&self, mut f: impl FnMut(Token, RawFd, Readiness) -> bool) {
        for e in &self.events[..self.ready] {
            let ready = Readiness {
                flags: PollFlags::from_bits(e.events() as libc::c_short),
                syscall: Syscall::Epoll,
            };
            let token = Token::from_u64(e.data());
            if !f(token, self.fd_of(token), ready) {
                return;
            }
        }
        for &(token, fd, want) in &self.always_ready {
            if !f(token, fd, always_ready(want)) {
                return;
            }
        }
    }

    fn for_each_registered(&self, _f: impl FnMut(Token, RawFd)) {
        // epoll_wait never fails for a closed fd: nothing to look for.
    }
}
