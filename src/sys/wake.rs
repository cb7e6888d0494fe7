//! The wake-up primitive of the daemon sources ([`crate::sources`]): a file
//! descriptor the loop watches for reading, and a write that makes it
//! readable, callable from any thread *and from a signal handler*.
//!
//! Where the build probe found `eventfd(2)` (`cfg(selectloop_has_eventfd)`:
//! Linux, Android, FreeBSD) it is one eventfd: a write adds to its 64-bit
//! counter, a read returns the counter and resets it, so any number of
//! wake-ups between two reads cost one read. Elsewhere it is a pipe: a write
//! puts one byte in it, and the reader drains what is there. A full pipe is
//! not an error for the writer: the reader has a wake-up pending anyway.
//!
//! Both write ends are non-blocking and close-on-exec, and a wake-up is one
//! `write(2)` (async-signal-safe) whose failure is ignored: there is nothing
//! a signal handler could do about it, and the only failure possible on a
//! healthy fd, `EAGAIN`, means "already awake".

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Which kernel object the wake-up is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WakeKind {
    /// An eventfd: one fd, written with an 8-byte counter increment.
    #[cfg(selectloop_has_eventfd)]
    EventFd,
    /// A pipe: the write end here, the read end with the loop.
    #[cfg_attr(selectloop_has_eventfd, allow(dead_code))]
    Pipe,
}

/// The write side of a wake-up fd. Shared (`Arc`) between the threads that
/// wake the loop and the signal handlers that do.
#[derive(Debug)]
pub(crate) struct WakeWriter {
    fd: OwnedFd,
    kind: WakeKind,
}

impl WakeWriter {
    /// A new wake-up fd: eventfd where the platform has it, a pipe
    /// elsewhere. Returns the writer and the fd to read (for eventfd, a
    /// duplicate of the same eventfd), both non-blocking and close-on-exec.
    pub(crate) fn new() -> io::Result<(WakeWriter, OwnedFd)> {
        #[cfg(selectloop_has_eventfd)]
        return Self::eventfd();
        #[cfg(not(selectloop_has_eventfd))]
        return Self::pipe();
    }

    /// The eventfd flavour.
    #[cfg(selectloop_has_eventfd)]
    pub(crate) fn eventfd() -> io::Result<(WakeWriter, OwnedFd)> {
        use nix::sys::eventfd::{EfdFlags, EventFd};
        let efd = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let fd = OwnedFd::from(efd);
        let reader = fd.try_clone()?;
        Ok((
            WakeWriter {
                fd,
                kind: WakeKind::EventFd,
            },
            reader,
        ))
    }

    /// The pipe flavour (compiled everywhere, so it is tested on Linux
    /// too).
    #[cfg_attr(selectloop_has_eventfd, allow(dead_code))]
    pub(crate) fn pipe() -> io::Result<(WakeWriter, OwnedFd)> {
        let (reader, writer) = pipe_cloexec_nonblocking()?;
        Ok((
            WakeWriter {
                fd: writer,
                kind: WakeKind::Pipe,
            },
            reader,
        ))
    }

    /// Which flavour this is.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn kind(&self) -> WakeKind {
        self.kind
    }

    /// Makes the read side readable. Async-signal-safe: one `write(2)`, no
    /// allocation, no lock. `EAGAIN` (a full pipe, a saturated counter)
    /// counts as success, since a wake-up is then pending already.
    pub(crate) fn wake(&self) -> io::Result<()> {
        let result = match self.kind {
            #[cfg(selectloop_has_eventfd)]
            WakeKind::EventFd => nix::unistd::write(&self.fd, &1u64.to_ne_bytes()),
            WakeKind::Pipe => nix::unistd::write(&self.fd, &[1u8]),
        };
        match result {
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The write fd (for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A pipe whose two ends are non-blocking and close-on-exec: `pipe2(2)` in
/// one call where the build probe found it, `pipe(2)` and `fcntl(2)`
/// elsewhere.
#[cfg_attr(selectloop_has_eventfd, allow(dead_code))]
fn pipe_cloexec_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(selectloop_has_pipe2)]
    return Ok(nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?);
    #[cfg(not(selectloop_has_pipe2))]
    return pipe_then_fcntl();
}

/// The portable way: `pipe(2)`, then the flags one fd at a time. (Another
/// thread's `fork` + `exec` between the two calls could inherit the fds;
/// `pipe2` closes that window where it exists.)
#[cfg_attr(selectloop_has_pipe2, allow(dead_code))]
fn pipe_then_fcntl() -> io::Result<(OwnedFd, OwnedFd)> {
    let (reader, writer) = nix::unistd::pipe()?;
    for fd in [&reader, &writer] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
        fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok((reader, writer))
}

/// Reads the wake-up fd until it would block; returns whether anything was
/// there. For the tests of this module (the sources drain through their
/// dispatcher).
#[cfg(test)]
fn drain(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut buf = [0u8; 64];
    let mut any = false;
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Ok(any),
            Ok(_) => any = true,
            Err(nix::errno::Errno::EAGAIN) => return Ok(any),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{poll, PollFd, PollFlags};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn readable(fd: &OwnedFd) -> bool {
        let mut fds = [PollFd::new(fd.as_raw_fd(), PollFlags::POLLIN)];
        poll(&mut fds, Some(Duration::ZERO)).unwrap();
        fds[0].revents().contains(PollFlags::POLLIN)
    }

    fn flags(fd: BorrowedFd<'_>) -> (OFlag, FdFlag) {
        (
            OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap()),
            FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD).unwrap()),
        )
    }

    /// Every flavour this build can make: the pipe always, eventfd where
    /// probed.
    fn flavours() -> Vec<(WakeWriter, OwnedFd)> {
        let pipe = WakeWriter::pipe().unwrap();
        #[cfg(selectloop_has_eventfd)]
        return vec![pipe, WakeWriter::eventfd().unwrap()];
        #[cfg(not(selectloop_has_eventfd))]
        return vec![pipe];
    }

    #[test]
    fn wake_makes_the_reader_readable_and_drain_clears_it() {
        for (writer, reader) in flavours() {
            assert!(
                !readable(&reader),
                "{:?}: readable before a wake",
                writer.kind()
            );
            writer.wake().unwrap();
            writer.wake().unwrap();
            assert!(
                readable(&reader),
                "{:?}: not readable after wake",
                writer.kind()
            );
            assert!(drain(reader.as_fd()).unwrap());
            assert!(
                !readable(&reader),
                "{:?}: still readable after drain",
                writer.kind()
            );
        }
    }

    #[test]
    fn both_ends_are_nonblocking_and_cloexec() {
        for (writer, reader) in flavours() {
            for fd in [writer.fd(), reader.as_fd()] {
                let (status, descriptor) = flags(fd);
                assert!(status.contains(OFlag::O_NONBLOCK), "{:?}", writer.kind());
                assert!(
                    descriptor.contains(FdFlag::FD_CLOEXEC),
                    "{:?}",
                    writer.kind()
                );
            }
        }
    }

    /// A wake-up on a full pipe neither blocks nor fails: one is pending.
    #[test]
    fn waking_a_full_pipe_succeeds_without_blocking() {
        let (writer, reader) = WakeWriter::pipe().unwrap();
        for _ in 0..200_000 {
            writer.wake().unwrap();
        }
        assert!(readable(&reader));
        assert!(drain(reader.as_fd()).unwrap());
        assert!(!readable(&reader));
    }

    /// The portable pipe path, which builds with pipe2 do not use.
    #[test]
    fn pipe_then_fcntl_sets_both_flags() {
        let (reader, writer) = pipe_then_fcntl().unwrap();
        for fd in [reader.as_fd(), writer.as_fd()] {
            let (status, descriptor) = flags(fd);
            assert!(status.contains(OFlag::O_NONBLOCK));
            assert!(descriptor.contains(FdFlag::FD_CLOEXEC));
        }
    }

    #[test]
    fn eventfd_is_used_where_probed() {
        let (writer, _reader) = WakeWriter::new().unwrap();
        #[cfg(selectloop_has_eventfd)]
        assert_eq!(writer.kind(), WakeKind::EventFd);
        #[cfg(not(selectloop_has_eventfd))]
        assert_eq!(writer.kind(), WakeKind::Pipe);
        #[cfg(all(target_os = "linux", not(selectloop_has_eventfd)))]
        if std::env::var_os("SELECTLOOP_NO_EVENTFD").is_none() {
            panic!("the build probe missed eventfd on Linux");
        }
    }
}
