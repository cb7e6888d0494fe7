//! The select(2) backend: three `fd_set`s kept between iterations.
//!
//! The kept sets are updated when a channel's interest changes and copied
//! into the sets handed to the kernel before each wait (select(2)
//! overwrites what it is given: reusing a set without rebuilding it is the
//! classic bug this copy avoids). Ready channels are served in registration
//! order, and the scan stops once every fd select(2) counted is found. An
//! fd at or above `FD_SETSIZE` cannot be watched: registering it is an
//! error the loop delivers to that channel.

use super::readiness::{IterTrace, Readiness, ShowTimeout, Syscall};
use super::{Interest, RegisterError, Registered, Selector, Waited};
use crate::map::Token;
use crate::sys::{self, FdSet, FdSetSizeError, PollFlags, FD_SETSIZE};
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct SelectSelector {
    /// What each channel asks for: read set (and except set) if readable,
    /// write set if writable.
    read: FdSet,
    write: FdSet,
    except: FdSet,
    /// The copies handed to select(2), holding its answer afterwards.
    ready_read: FdSet,
    ready_write: FdSet,
    ready_except: FdSet,
    /// The watched channels, in registration order.
    channels: Registered,
    /// What the last wait returned (select counts an fd once per set).
    ready: usize,
}

impl SelectSelector {
    fn clear_bits(&mut self, fd: RawFd) {
        self.read.remove(fd);
        self.write.remove(fd);
        self.except.remove(fd);
    }

    fn kill(&mut self, at: usize) {
        if self.channels.kill(at) {
            self.channels.compact(|_, _| {});
        }
    }
}

impl Selector for SelectSelector {
    fn set_interest(
        &mut self,
        token: Token,
        fd: RawFd,
        _old: Interest,
        new: Interest,
    ) -> Result<(), RegisterError> {
        if fd < 0 || fd as usize >= FD_SETSIZE {
            if new.is_none() {
                return Ok(());
            }
            return Err(RegisterError::FdTooLarge(FdSetSizeError {
                fd,
                limit: FD_SETSIZE,
            }));
        }
        match self.channels.position(token) {
            Some(at) if self.channels.fds[at] != fd => {
                let old_fd = self.channels.fds[at];
                self.clear_bits(old_fd);
                self.kill(at);
                self.channels.push(token, fd);
            }
            Some(_) => {}
            None => {
                self.channels.push(token, fd);
            }
        }
        let fits = |r: Result<(), FdSetSizeError>| r.map_err(RegisterError::FdTooLarge);
        if new.read {
            fits(self.read.insert(fd))?;
        } else {
            self.read.remove(fd);
        }
        if new.write {
            fits(self.write.insert(fd))?;
        } else {
            self.write.remove(fd);
        }
        if new.is_none() {
            self.except.remove(fd);
        } else {
            fits(self.except.insert(fd))?;
        }
        Ok(())
    }

    fn deregister(&mut self, token: Token, _fd: RawFd, _old: Interest) {
        if let Some(at) = self.channels.position(token) {
            let fd = self.channels.fds[at];
            self.clear_bits(fd);
            self.kill(at);
        }
    }

    fn wait(&mut self, timeout: Option<Duration>, trace: Option<&IterTrace>) -> io::Result<Waited> {
        self.ready_read = self.read;
        self.ready_write = self.write;
        self.ready_except = self.except;
        if let Some(t) = trace {
            log::trace!(
                "{} iteration {}: select(readfds={:?}, writefds={:?}, exceptfds={:?}, timeout={})",
                t.stamp(),
                t.iteration,
                self.ready_read,
                self.ready_write,
                self.ready_except,
                ShowTimeout(timeout)
            );
        }
        let n = match sys::select(
            &mut self.ready_read,
            &mut self.ready_write,
            &mut self.ready_except,
            timeout,
        ) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                if trace.is_some() {
                    log::trace!("select -> EBADF: a watched fd is closed; looking for it");
                }
                return Ok(Waited::BadFd);
            }
            Err(e) => return Err(e),
        };
        self.ready = n;
        if let Some(t) = trace {
            let why = if n == 0 {
                " (timeout)"
            } else {
                " (an fd counts once per set it is in)"
            };
            log::trace!(
                "{} select -> {n} ready{why}: readfds={:?}, writefds={:?}, exceptfds={:?}",
                t.stamp(),
                self.ready_read,
                self.ready_write,
                self.ready_except
            );
        }
        Ok(Waited::Ready(n))
    }

    fn for_each_ready(&self, mut f: impl FnMut(Token, RawFd, Readiness) -> bool) {
        let (r, w, x) = (&self.ready_read, &self.ready_write, &self.ready_except);
        let mut left = self.ready;
        for (token, &fd) in self.channels.tokens.iter().zip(&self.channels.fds) {
            if left == 0 {
                break;
            }
            let Some(token) = token else { continue };
            let mut flags = PollFlags::EMPTY;
            if r.contains(fd) {
                flags |= PollFlags::POLLIN;
                left = left.saturating_sub(1);
            }
            if w.contains(fd) {
                flags |= PollFlags::POLLOUT;
                left = left.saturating_sub(1);
            }
            if x.contains(fd) {
                flags |= PollFlags::POLLPRI;
                left = left.saturating_sub(1);
            }
            if flags.is_empty() {
                continue;
            }
            let ready = Readiness {
                flags,
                syscall: Syscall::Select,
            };
            if !f(*token, fd, ready) {
                break;
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
