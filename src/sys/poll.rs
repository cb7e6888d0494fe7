//! `poll(2)`: an array of `pollfd` in, `revents` filled in place.

use super::cvt;
use super::timeout::{poll_millis, Deadline};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The `events` / `revents` bits of a `pollfd`.
///
/// A thin bit-set over `libc::c_short` with the names of the C constants.
/// `Display` prints them as C would be written: `POLLIN|POLLOUT` (the trace
/// output of the loop uses it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PollFlags(libc::c_short);

impl PollFlags {
    /// No bits.
    pub const EMPTY: PollFlags = PollFlags(0);
    /// Data to read (or a connection to accept, or the peer's EOF).
    pub const POLLIN: PollFlags = PollFlags(libc::POLLIN);
    /// Urgent ("priority", out-of-band) data to read.
    pub const POLLPRI: PollFlags = PollFlags(libc::POLLPRI);
    /// Writing will not block.
    pub const POLLOUT: PollFlags = PollFlags(libc::POLLOUT);
    /// An error condition (output only; reported even if not asked for).
    pub const POLLERR: PollFlags = PollFlags(libc::POLLERR);
    /// Hang up (output only; reported even if not asked for).
    pub const POLLHUP: PollFlags = PollFlags(libc::POLLHUP);
    /// The fd is not open (output only; reported even if not asked for).
    pub const POLLNVAL: PollFlags = PollFlags(libc::POLLNVAL);

    const NAMES: [(PollFlags, &'static str); 6] = [
        (Self::POLLIN, "POLLIN"),
        (Self::POLLPRI, "POLLPRI"),
        (Self::POLLOUT, "POLLOUT"),
        (Self::POLLERR, "POLLERR"),
        (Self::POLLHUP, "POLLHUP"),
        (Self::POLLNVAL, "POLLNVAL"),
    ];

    /// The raw bits.
    pub const fn bits(self) -> libc::c_short {
        self.0
    }

    /// Flags from raw bits (unknown bits are kept).
    pub const fn from_bits(bits: libc::c_short) -> Self {
        PollFlags(bits)
    }

    /// Whether any bit of `other` is set in `self`.
    pub const fn intersects(self, other: PollFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: PollFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for PollFlags {
    type Output = PollFlags;
    fn bitor(self, rhs: PollFlags) -> PollFlags {
        PollFlags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for PollFlags {
    fn bitor_assign(&mut self, rhs: PollFlags) {
        self.0 |= rhs.0;
    }
}

impl std::ops::BitAnd for PollFlags {
    type Output = PollFlags;
    fn bitand(self, rhs: PollFlags) -> PollFlags {
        PollFlags(self.0 & rhs.0)
    }
}

impl fmt::Display for PollFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut first = true;
        let mut known = 0;
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                known |= flag.0;
            }
        }
        let rest = self.0 & !known;
        if rest != 0 {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{:#x}", rest)?;
        }
        Ok(())
    }
}

impl fmt::Debug for PollFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One entry of the array passed to poll(2): an fd, the events asked for,
/// and the events returned.
///
/// `#[repr(transparent)]` over `libc::pollfd`, so a `&mut [PollFd]` is
/// handed to the kernel without copying, and a `Vec<PollFd>` kept between
/// calls is reused (clear and refill) with no allocation. Unlike nix's
/// `PollFd<'fd>` it holds a raw fd and no borrow, which is what makes a
/// stored array possible; the caller keeps the fds open while polling (an fd
/// closed in between shows up as `POLLNVAL`, never as undefined behaviour).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// An entry asking for `events` on `fd`, with `revents` cleared.
    pub fn new(fd: RawFd, events: PollFlags) -> Self {
        PollFd(libc::pollfd {
            fd,
            events: events.0,
            revents: 0,
        })
    }

    /// The fd.
    pub fn fd(&self) -> RawFd {
        self.0.fd
    }

    /// The events asked for.
    pub fn events(&self) -> PollFlags {
        PollFlags(self.0.events)
    }

    /// Changes the events asked for.
    pub fn set_events(&mut self, events: PollFlags) {
        self.0.events = events.0;
    }

    /// The events the last [`poll`] returned for this fd.
    pub fn revents(&self) -> PollFlags {
        PollFlags(self.0.revents)
    }
}

impl fmt::Debug for PollFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollFd")
            .field("fd", &self.fd())
            .field("events", &self.events())
            .field("revents", &self.revents())
            .finish()
    }
}

/// Waits until one of `fds` has an event it asked for (or `POLLERR`,
/// `POLLHUP`, `POLLNVAL`, which are always reported), or until `timeout`
/// passes. Fills each entry's `revents` and returns how many entries have a
/// non-zero `revents` (0 on timeout).
///
/// * `timeout`: `None` blocks; `Some(Duration::ZERO)` returns at once;
///   sub-millisecond timeouts round up to 1 ms; huge ones clamp to
///   `i32::MAX` ms.
/// * `EINTR` is retried with the time that is left; a signal is never
///   reported as an error.
/// * An fd that is not open is reported as `POLLNVAL` in its entry (poll(2)
///   itself does not fail for it). A negative fd is ignored by the kernel
///   and gets `revents == 0`.
///
/// ```
/// use selectloop::sys::{poll, PollFd, PollFlags};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// std::io::Write::write_all(&mut b, b"ping")?;
/// let mut fds = vec![PollFd::new(a.as_raw_fd(), PollFlags::POLLIN)];
/// let n = poll(&mut fds, Some(Duration::from_secs(1)))?;
/// assert_eq!(n, 1);
/// assert!(fds[0].revents().contains(PollFlags::POLLIN));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let deadline = Deadline::after(timeout);
    let mut wait = timeout;
    loop {
        // SAFETY: PollFd is repr(transparent) over libc::pollfd, so the slice
        // is a valid, exclusively borrowed array of `fds.len()` pollfds.
        let ret = unsafe {
            libc::poll(
                fds.as_mut_ptr().cast::<libc::pollfd>(),
                fds.len() as libc::nfds_t,
                poll_millis(wait),
            )
        };
        match cvt(ret) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => wait = deadline.remaining(),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn flags_display_like_c() {
        assert_eq!(
            (PollFlags::POLLIN | PollFlags::POLLOUT).to_string(),
            "POLLIN|POLLOUT"
        );
        assert_eq!(PollFlags::EMPTY.to_string(), "0");
        assert_eq!(PollFlags::POLLNVAL.to_string(), "POLLNVAL");
    }

    #[test]
    fn pollfd_has_the_layout_of_libc_pollfd() {
        assert_eq!(
            std::mem::size_of::<PollFd>(),
            std::mem::size_of::<libc::pollfd>()
        );
    }

    #[test]
    fn poll_reports_readable_and_writable() {
        let (a, mut b) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut b, b"x").unwrap();
        let mut fds = [
            PollFd::new(a.as_raw_fd(), PollFlags::POLLIN | PollFlags::POLLOUT),
            PollFd::new(b.as_raw_fd(), PollFlags::POLLIN),
        ];
        let n = poll(&mut fds, Some(Duration::ZERO)).unwrap();
        assert_eq!(n, 1);
        assert!(fds[0]
            .revents()
            .contains(PollFlags::POLLIN | PollFlags::POLLOUT));
        assert!(fds[1].revents().is_empty());
    }

    #[test]
    fn poll_reports_hup_even_with_no_events_asked() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut fds = [PollFd::new(a.as_raw_fd(), PollFlags::EMPTY)];
        let n = poll(&mut fds, Some(Duration::ZERO)).unwrap();
        assert_eq!(n, 1);
        assert!(fds[0].revents().contains(PollFlags::POLLHUP));
    }

    #[test]
    fn poll_reports_nval_for_a_closed_fd() {
        let (a, _b) = UnixStream::pair().unwrap();
        let high = nix::fcntl::fcntl(&a, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(901)).unwrap();
        nix::unistd::close(high).unwrap();
        let mut fds = [PollFd::new(high, PollFlags::POLLIN)];
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 1);
        assert_eq!(fds[0].revents(), PollFlags::POLLNVAL);
    }

    #[test]
    fn poll_waits_out_its_timeout() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut fds = [PollFd::new(a.as_raw_fd(), PollFlags::POLLIN)];
        let start = std::time::Instant::now();
        assert_eq!(poll(&mut fds, Some(Duration::from_millis(20))).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
