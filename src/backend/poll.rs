//! The poll(2) backend: a `pollfd` array kept between iterations.
//!
//! Each registered channel keeps one entry, in registration order; a change
//! of interest rewrites its `events` in place. A channel that asks for
//! nothing has its entry's fd set to -1, which poll(2) ignores, so its
//! `POLLHUP` cannot spin the loop. A channel that leaves is marked dead the
//! same way, and the array is compacted before the next wait: poll(2)
//! refuses (`EINVAL`) an array longer than the process's fd limit, which
//! closed channels' places could otherwise push it past when fds run out. After a wait, the scan stops once it has seen as many ready
//! entries as poll(2) said.

use super::readiness::{IterTrace, Readiness, ShowTimeout, Syscall};
use super::{Interest, RegisterError, Registered, Selector, Waited};
use crate::map::Token;
use crate::sys::{self, PollFd, PollFlags};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct PollSelector {
    /// The array handed to poll(2); `pollfds[i]` is `channels`' position `i`.
    pollfds: Vec<PollFd>,
    channels: Registered,
    /// How many entries the last wait reported ready.
    ready: usize,
}

fn events(want: Interest) -> PollFlags {
    let mut e = PollFlags::EMPTY;
    if want.read {
        e |= PollFlags::POLLIN | PollFlags::POLLPRI;
    }
    if want.write {
        e |= PollFlags::POLLOUT;
    }
    e
}

impl Selector for PollSelector {
    fn set_interest(
        &mut self,
        token: Token,
        fd: RawFd,
        _old: Interest,
        new: Interest,
    ) -> Result<(), RegisterError> {
        // poll(2) ignores an entry with a negative fd.
        let entry = if new.is_none() {
            PollFd::new(-1, PollFlags::EMPTY)
        } else {
            PollFd::new(fd, events(new))
        };
        match self.channels.position(token) {
            Some(at) if self.channels.fds[at] == fd => self.pollfds[at] = entry,
            Some(at) => {
                // Another fd for the same channel: a new registration.
                self.pollfds[at] = PollFd::new(-1, PollFlags::EMPTY);
                if self.channels.kill(at) {
                    self.compact();
                }
                if !new.is_none() {
                    self.channels.push(token, fd);
                    self.pollfds.push(entry);
                }
            }
            None if new.is_none() => {}
            None => {
                self.channels.push(token, fd);
                self.pollfds.push(entry);
            }
        }
        Ok(())
    }

    fn deregister(&mut self, token: Token, _fd: RawFd, _old: Interest) {
        if let Some(at) = self.channels.position(token) {
            self.pollfds[at] = PollFd::new(-1, PollFlags::EMPTY);
            if self.channels.kill(at) {
                self.compact();
            }
        }
    }

    fn wait(&mut self, timeout: Option<Duration>, trace: Option<&IterTrace>) -> io::Result<Waited> {
        if self.channels.has_dead() {
            self.compact();
        }
        if let Some(t) = trace {
            log::trace!(
                "{} iteration {}: poll(nfds={}, timeout={})",
                t.stamp(),
                t.iteration,
                self.pollfds.len(),
                ShowTimeout(timeout)
            );
            let registered = self.channels.tokens.iter().zip(&self.channels.fds);
            for (p, (token, fd)) in self.pollfds.iter().zip(registered) {
                if p.fd() >= 0 {
                    log::trace!("  pollfd fd={} events={}", p.fd(), p.events());
                } else if token.is_some() {
                    log::trace!("  pollfd fd=-1 (fd {fd} asks for nothing: ignored)");
                }
            }
        }
        let n = sys::poll(&mut self.pollfds, timeout)?;
        self.ready = n;
        if let Some(t) = trace {
            let why = if n == 0 { " (timeout)" } else { "" };
            log::trace!("{} poll -> {n} ready{why}", t.stamp());
            for p in self.pollfds.iter().filter(|p| !p.revents().is_empty()) {
                log::trace!("  pollfd fd={} revents={}", p.fd(), p.revents());
            }
        }
        Ok(Waited::Ready(n))
    }

    fn for_each_ready(&self, mut f: impl FnMut(Token, RawFd, Readiness) -> bool) {
        let mut left = self.ready;
        for (p, token) in self.pollfds.iter().zip(&self.channels.tokens) {
            if left == 0 {
                break;
            }
            let revents = p.revents();
            if revents.is_empty() {
                continue;
            }
            left -= 1;
            if let Some(token) = token {
                let ready = Readiness {
                    flags: revents,
                    syscall: Syscall::Poll,
                };
                if !f(*token, p.fd(), ready) {
                    break;
                }
            }
        }
    }

    fn for_each_registered(&self, mut f: impl FnMut(Token, RawFd)) {
        for (t, fd) in self.channels.tokens.iter().zip(&self.channels.fds) {
            if let Some(t) = t {
                f(*t, *fd);
            }
        }
    }
}

impl PollSelector {
    fn compact(&mut self) {
        let pollfds = &mut self.pollfds;
        self.channels
            .compact(|from, to| pollfds[to] = pollfds[from]);
        pollfds.truncate(self.channels.tokens.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn token(index: u64) -> Token {
        Token::from_u64(index << 32)
    }

    /// poll(2) fails with EINVAL for an array longer than RLIMIT_NOFILE:
    /// the places of channels that left never reach the kernel.
    #[test]
    fn the_array_handed_to_poll_holds_only_live_channels() {
        let pairs: Vec<_> = (0..40).map(|_| UnixStream::pair().unwrap()).collect();
        let mut sel = PollSelector::default();
        let want = Interest {
            read: true,
            write: false,
        };
        for (i, (a, _)) in pairs.iter().enumerate() {
            sel.set_interest(token(i as u64), a.as_raw_fd(), Interest::NONE, want)
                .unwrap();
        }
        for (i, (a, _)) in pairs.iter().enumerate().take(30) {
            sel.deregister(token(i as u64), a.as_raw_fd(), want);
        }
        sel.wait(Some(Duration::ZERO), None).unwrap();
        assert_eq!(sel.pollfds.len(), 10);
        // The survivors keep their registration order.
        let order: Vec<u64> = sel
            .channels
            .tokens
            .iter()
            .map(|t| t.map_or(u64::MAX, |t| t.to_u64() >> 32))
            .collect();
        assert_eq!(order, (30..40).collect::<Vec<u64>>());
    }
}
