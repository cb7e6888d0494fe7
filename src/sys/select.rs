//! `select(2)`: three fd sets and a timeout in, three ready sets out.

use super::cvt;
use super::timeout::{select_timeval, Deadline};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The number of fds an `fd_set` holds on this platform: fds `0` to
/// `FD_SETSIZE - 1` can be passed to select(2), larger ones cannot.
///
/// The `libc` crate's value, and never more than the bits that
/// `libc::fd_set` really has, so an fd can never index past the set this
/// crate allocates. Typically 1024.
#[allow(clippy::unnecessary_cast)] // libc's type differs between platforms
pub const FD_SETSIZE: usize = {
    let declared = libc::FD_SETSIZE as usize;
    let storage = 8 * std::mem::size_of::<libc::fd_set>();
    if declared < storage {
        declared
    } else {
        storage
    }
};

/// An fd that cannot be used with select(2) because it is not below
/// [`FD_SETSIZE`].
///
/// The loop hands this to the channel's `handle_error` wrapped in an
/// `io::Error` of kind `InvalidInput`; get it back with
/// `err.get_ref().and_then(|e| e.downcast_ref::<FdSetSizeError>())`. The
/// other channels are not affected. The way out is the poll backend
/// (`use_poll`), which has no such limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdSetSizeError {
    /// The fd that did not fit.
    pub fd: RawFd,
    /// The platform's `FD_SETSIZE`.
    pub limit: usize,
}

impl fmt::Display for FdSetSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fd {} is out of range for select(2) (FD_SETSIZE is {}); use the poll backend (use_poll) for fds this large",
            self.fd, self.limit
        )
    }
}

impl std::error::Error for FdSetSizeError {}

impl From<FdSetSizeError> for io::Error {
    fn from(e: FdSetSizeError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// A set of file descriptors for select(2): a safe wrapper over
/// `libc::fd_set` that refuses fds it cannot hold.
///
/// Unlike `nix::sys::select::FdSet::insert`, which panics for an fd at or
/// above `FD_SETSIZE`, [`FdSet::insert`] returns an [`FdSetSizeError`]. The
/// set also remembers its highest fd, so [`select`] can compute `nfds`
/// without scanning.
///
/// `FdSet` is `Copy` (128 bytes on Linux): the loop keeps three of them and
/// clears them each iteration instead of allocating.
#[derive(Clone, Copy)]
pub struct FdSet {
    set: libc::fd_set,
    /// The highest fd ever inserted since the last `clear`, or -1. An
    /// over-estimate after `remove` is harmless: it only widens `nfds`.
    highest: RawFd,
}

impl FdSet {
    /// An empty set.
    pub fn new() -> Self {
        // SAFETY: fd_set is a plain array of integers, for which all-zero
        // bytes are a valid value; FD_ZERO below makes the emptiness explicit.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, exclusively borrowed fd_set.
        unsafe { libc::FD_ZERO(&mut set) };
        FdSet { set, highest: -1 }
    }

    fn check(fd: RawFd) -> Result<(), FdSetSizeError> {
        if fd < 0 || fd as usize >= FD_SETSIZE {
            Err(FdSetSizeError {
                fd,
                limit: FD_SETSIZE,
            })
        } else {
            Ok(())
        }
    }

    /// Adds `fd`; an fd outside `0..FD_SETSIZE` is refused with an error and
    /// leaves the set unchanged.
    pub fn insert(&mut self, fd: RawFd) -> Result<(), FdSetSizeError> {
        Self::check(fd)?;
        // SAFETY: 0 <= fd < FD_SETSIZE was checked above, so FD_SET writes
        // inside the array.
        unsafe { libc::FD_SET(fd, &mut self.set) };
        self.highest = self.highest.max(fd);
        Ok(())
    }

    /// Removes `fd` (no effect if it is absent or out of range).
    pub fn remove(&mut self, fd: RawFd) {
        if Self::check(fd).is_ok() {
            // SAFETY: 0 <= fd < FD_SETSIZE was checked above.
            unsafe { libc::FD_CLR(fd, &mut self.set) };
        }
    }

    /// Whether `fd` is in the set (`false` for an out-of-range fd).
    pub fn contains(&self, fd: RawFd) -> bool {
        if Self::check(fd).is_err() || fd > self.highest {
            return false;
        }
        // SAFETY: 0 <= fd < FD_SETSIZE was checked above; FD_ISSET only reads.
        unsafe { libc::FD_ISSET(fd, &self.set) }
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        // SAFETY: `self.set` is a valid, exclusively borrowed fd_set.
        unsafe { libc::FD_ZERO(&mut self.set) };
        self.highest = -1;
    }

    /// The highest fd inserted since the last `clear`, if any.
    pub fn highest(&self) -> Option<RawFd> {
        (self.highest >= 0).then_some(self.highest)
    }

    /// Whether no fd is in the set.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The fds in the set, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = RawFd> + '_ {
        (0..=self.highest).filter(move |&fd| self.contains(fd))
    }
}

impl Default for FdSet {
    fn default() -> Self {
        FdSet::new()
    }
}

impl fmt::Debug for FdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Waits until an fd in `read` is readable, one in `write` writable, or one
/// in `except` has an exceptional condition (out-of-band data), or until
/// `timeout` passes. On return each set holds only its ready fds, and the
/// result is how many fds are ready in all (0 on timeout).
///
/// * `timeout`: `None` blocks; `Some(Duration::ZERO)` polls and returns at
///   once. With all three sets empty this is a plain sleep of `timeout`.
/// * `EINTR` is retried with the sets as they were passed and the time that
///   is left (see [`Deadline`]); a signal is never reported as an error.
/// * Any other failure (`EBADF` for an fd that is not open, `EINVAL`) is
///   returned, and the sets are then left as they were passed in.
///
/// ```
/// use selectloop::sys::{select, FdSet};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// std::io::Write::write_all(&mut b, b"ping")?;
/// let (mut r, mut w, mut x) = (FdSet::new(), FdSet::new(), FdSet::new());
/// r.insert(a.as_raw_fd())?;
/// let n = select(&mut r, &mut w, &mut x, Some(Duration::from_secs(1)))?;
/// assert_eq!(n, 1);
/// assert!(r.contains(a.as_raw_fd()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn select(
    read: &mut FdSet,
    write: &mut FdSet,
    except: &mut FdSet,
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let nfds = read.highest.max(write.highest).max(except.highest) + 1;
    let (r0, w0, x0) = (*read, *write, *except);
    let deadline = Deadline::after(timeout);
    let mut wait = timeout;
    loop {
        let mut tv = select_timeval(wait);
        let tvp = tv
            .as_mut()
            .map_or(std::ptr::null_mut(), |t| t as *mut libc::timeval);
        // SAFETY: the three sets are valid, exclusively borrowed fd_sets that
        // hold only fds below FD_SETSIZE (FdSet::insert checks), `nfds` is
        // one more than the highest of them, and `tvp` is null or points to a
        // timeval that lives until the call returns.
        let ret =
            unsafe { libc::select(nfds, &mut read.set, &mut write.set, &mut except.set, tvp) };
        match cvt(ret) {
            Ok(n) => return Ok(n as usize),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                (*read, *write, *except) = (r0, w0, x0);
                wait = deadline.remaining();
            }
            Err(e) => {
                (*read, *write, *except) = (r0, w0, x0);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn the_last_fd_below_fd_setsize_fits_and_the_next_is_refused() {
        assert!(FD_SETSIZE <= 8 * std::mem::size_of::<libc::fd_set>());
        let mut set = FdSet::new();
        let last = (FD_SETSIZE - 1) as RawFd;
        set.insert(last).unwrap();
        assert!(set.contains(last));
        let err = set.insert(FD_SETSIZE as RawFd).unwrap_err();
        assert_eq!(err.limit, FD_SETSIZE);
        assert!(!set.contains(FD_SETSIZE as RawFd));
    }

    #[test]
    fn insert_out_of_range_is_a_typed_error_not_a_panic() {
        let mut set = FdSet::new();
        let err = set.insert(FD_SETSIZE as RawFd).unwrap_err();
        assert_eq!(err.fd, FD_SETSIZE as RawFd);
        assert_eq!(err.limit, FD_SETSIZE);
        assert!(err.to_string().contains("poll"));
        assert!(set.insert(-1).is_err());
        assert!(set.is_empty());
        assert!(!set.contains(FD_SETSIZE as RawFd + 5));
    }

    #[test]
    fn insert_contains_remove_clear() {
        let mut set = FdSet::new();
        set.insert(3).unwrap();
        set.insert(700).unwrap();
        assert!(set.contains(3) && set.contains(700) && !set.contains(4));
        assert_eq!(set.highest(), Some(700));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3, 700]);
        set.remove(3);
        assert!(!set.contains(3));
        set.clear();
        assert!(set.is_empty());
        assert_eq!(set.highest(), None);
    }

    #[test]
    fn select_reports_only_ready_fds() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        std::io::Write::write_all(&mut b, b"x").unwrap();
        let (mut r, mut w, mut x) = (FdSet::new(), FdSet::new(), FdSet::new());
        r.insert(a.as_raw_fd()).unwrap();
        r.insert(c.as_raw_fd()).unwrap();
        let n = select(&mut r, &mut w, &mut x, Some(Duration::ZERO)).unwrap();
        assert_eq!(n, 1);
        assert!(r.contains(a.as_raw_fd()));
        assert!(!r.contains(c.as_raw_fd()));
    }

    #[test]
    fn select_with_empty_sets_sleeps_the_timeout() {
        let (mut r, mut w, mut x) = (FdSet::new(), FdSet::new(), FdSet::new());
        let start = std::time::Instant::now();
        let n = select(&mut r, &mut w, &mut x, Some(Duration::from_millis(30))).unwrap();
        assert_eq!(n, 0);
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn select_on_a_closed_fd_fails_with_ebadf_and_restores_the_sets() {
        // A high fd number that no other test thread will be handed while it
        // is closed: dup the socket to >= 900, then close the copy.
        let (a, _b) = UnixStream::pair().unwrap();
        let high = nix::fcntl::fcntl(&a, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(900)).unwrap();
        nix::unistd::close(high).unwrap();
        let mut r = FdSet::new();
        r.insert(high).unwrap();
        let (mut w, mut x) = (FdSet::new(), FdSet::new());
        let err = select(&mut r, &mut w, &mut x, Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        assert!(r.contains(high), "the sets are restored after a failure");
    }
}
