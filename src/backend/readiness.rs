//! What a backend reports, and how its wait shows in the trace: a
//! readiness as poll(2) bits plus the syscall that reported it (so the
//! trace names flags in that syscall's terms), the iteration stamp every
//! wait line starts with, and the wait's timeout.

use crate::sys::PollFlags;
use std::fmt;
use std::time::{Duration, Instant};

/// Which syscall reported a readiness, so the trace names its flags as that
/// syscall does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syscall {
    Select,
    Poll,
    Epoll,
}

/// One channel's readiness, as poll(2) bits plus the syscall that reported
/// it. `Display` names every flag that came back, in that syscall's terms:
/// `readable|writable` (select), `POLLIN|POLLHUP` (poll),
/// `EPOLLIN|EPOLLHUP` (epoll).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readiness {
    pub(crate) flags: PollFlags,
    pub(crate) syscall: Syscall,
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: &[(PollFlags, &str)] = match self.syscall {
            Syscall::Select => &[
                (PollFlags::POLLIN, "readable"),
                (PollFlags::POLLOUT, "writable"),
                (PollFlags::POLLPRI, "exceptional"),
            ],
            Syscall::Poll => &[
                (PollFlags::POLLIN, "POLLIN"),
                (PollFlags::POLLPRI, "POLLPRI"),
                (PollFlags::POLLOUT, "POLLOUT"),
                (PollFlags::POLLERR, "POLLERR"),
                (PollFlags::POLLHUP, "POLLHUP"),
                (PollFlags::POLLNVAL, "POLLNVAL"),
            ],
            Syscall::Epoll => &[
                (PollFlags::POLLIN, "EPOLLIN"),
                (PollFlags::POLLPRI, "EPOLLPRI"),
                (PollFlags::POLLOUT, "EPOLLOUT"),
                (PollFlags::POLLERR, "EPOLLERR"),
                (PollFlags::POLLHUP, "EPOLLHUP"),
            ],
        };
        let mut first = true;
        for (flag, name) in names {
            if self.flags.intersects(*flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("0")?;
        }
        Ok(())
    }
}

/// Time since the loop started, as the iteration lines show it:
/// `[+0.001234s]`.
pub(crate) struct Stamp(pub(crate) Duration);

impl Stamp {
    pub(crate) fn since(start: Instant) -> Stamp {
        Stamp(start.elapsed())
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[+{:.6}s]", self.0.as_secs_f64())
    }
}

/// What an iteration's trace lines start with: `[+0.001234s] iteration 7:`.
pub(crate) struct IterTrace {
    pub(crate) started: Instant,
    pub(crate) iteration: u64,
}

impl IterTrace {
    /// The time since the loop started.
    pub(crate) fn stamp(&self) -> Stamp {
        Stamp::since(self.started)
    }
}

/// A wait's timeout as the trace shows it.
pub(crate) struct ShowTimeout(pub(crate) Option<Duration>);

impl fmt::Display for ShowTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("none (block)"),
            Some(t) => write!(f, "{:.3}s", t.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_is_named_in_the_syscalls_terms() {
        let flags = PollFlags::POLLIN | PollFlags::POLLHUP;
        let show = |syscall| Readiness { flags, syscall }.to_string();
        assert_eq!(show(Syscall::Poll), "POLLIN|POLLHUP");
        assert_eq!(show(Syscall::Epoll), "EPOLLIN|EPOLLHUP");
        let flags = PollFlags::POLLIN | PollFlags::POLLOUT;
        assert_eq!(
            Readiness {
                flags,
                syscall: Syscall::Select
            }
            .to_string(),
            "readable|writable"
        );
    }

    #[test]
    fn stamps_have_microseconds() {
        assert_eq!(
            Stamp(Duration::from_micros(1234)).to_string(),
            "[+0.001234s]"
        );
    }
}
