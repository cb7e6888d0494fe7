//! `epoll(7)` (Linux): the interest set lives in the kernel; a wait returns
//! only the fds that are ready.

use super::cvt;
use super::timeout::{poll_millis, Deadline};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// One entry of what [`Epoll::wait`] returns: the events that are ready and
/// the `data` given at registration.
///
/// `#[repr(transparent)]` over `libc::epoll_event`, so a `Vec<EpollEvent>`
/// is handed to the kernel as is and reused between waits.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct EpollEvent(libc::epoll_event);

impl EpollEvent {
    /// An empty entry (for the buffer [`Epoll::wait`] fills).
    pub fn empty() -> Self {
        EpollEvent(libc::epoll_event { events: 0, u64: 0 })
    }

    /// The ready events: `EPOLLIN`, `EPOLLOUT`, `EPOLLPRI`, `EPOLLERR`,
    /// `EPOLLHUP`, ... (the same bit values as poll(2)'s flags on Linux).
    pub fn events(&self) -> u32 {
        // A copy: the struct is packed on some targets.
        let e = self.0;
        e.events
    }

    /// The `data` given at registration.
    pub fn data(&self) -> u64 {
        let e = self.0;
        e.u64
    }
}

impl Default for EpollEvent {
    fn default() -> Self {
        EpollEvent::empty()
    }
}

impl fmt::Debug for EpollEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpollEvent")
            .field("events", &format_args!("{:#x}", self.events()))
            .field("data", &self.data())
            .finish()
    }
}

/// An epoll instance: `epoll_create1(EPOLL_CLOEXEC)`, closed on drop.
///
/// Level-triggered (the default, and what this crate uses): an fd that is
/// still ready is reported again by the next wait, as with select and poll.
///
/// ```
/// use selectloop::sys::{Epoll, EpollEvent};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
/// std::io::Write::write_all(&mut b, b"ping")?;
/// let ep = Epoll::new()?;
/// ep.add(a.as_raw_fd(), libc::EPOLLIN as u32, 42)?;
/// let mut events = vec![EpollEvent::empty(); 8];
/// let n = ep.wait(&mut events, Some(Duration::from_secs(1)))?;
/// assert_eq!(n, 1);
/// assert_eq!(events[0].data(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// A new, empty epoll instance (close-on-exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative return is
        // a new fd that nothing else owns.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by epoll_create1 and is owned here
        // alone.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: data };
        // SAFETY: `ev` is a valid epoll_event that lives for the call; the
        // kernel checks `fd` itself (EBADF for one that is not open).
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    /// `EPOLL_CTL_ADD`: starts watching `fd` for `events`, reporting `data`.
    /// Fails with `EPERM` for a regular file (always ready; epoll refuses
    /// it), `EEXIST` if it is already watched, `EBADF` if it is not open.
    pub fn add(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, data)
    }

    /// `EPOLL_CTL_MOD`: changes what `fd` is watched for.
    pub fn modify(&self, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, data)
    }

    /// `EPOLL_CTL_DEL`: stops watching `fd`. Must come before the fd is
    /// closed if another fd refers to the same open file (a `dup`), or the
    /// kernel goes on reporting it.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits until a watched fd is ready or `timeout` passes; fills the
    /// front of `events` and returns how many entries it filled (0 on
    /// timeout). `None` blocks; sub-millisecond timeouts round up to 1 ms;
    /// `EINTR` is retried with the time that is left.
    pub fn wait(&self, events: &mut [EpollEvent], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = Deadline::after(timeout);
        let mut wait = timeout;
        let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
        loop {
            // SAFETY: EpollEvent is repr(transparent) over epoll_event, so
            // `events` is a valid, exclusively borrowed array of at least
            // `max` entries for the kernel to fill.
            let ret = unsafe {
                libc::epoll_wait(
                    self.fd.as_raw_fd(),
                    events.as_mut_ptr().cast::<libc::epoll_event>(),
                    max,
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
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn add_modify_delete_and_wait() {
        let (a, b) = UnixStream::pair().unwrap();
        let ep = Epoll::new().unwrap();
        let mut events = vec![EpollEvent::empty(); 4];
        ep.add(a.as_raw_fd(), libc::EPOLLIN as u32, 7).unwrap();
        assert_eq!(ep.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
        ep.modify(a.as_raw_fd(), libc::EPOLLOUT as u32, 8).unwrap();
        assert_eq!(ep.wait(&mut events, Some(Duration::ZERO)).unwrap(), 1);
        assert_eq!(events[0].data(), 8);
        assert_eq!(events[0].events(), libc::EPOLLOUT as u32);
        ep.delete(a.as_raw_fd()).unwrap();
        assert_eq!(ep.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
        drop(b);
    }

    #[test]
    fn a_regular_file_is_refused_with_eperm() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let ep = Epoll::new().unwrap();
        let err = ep.add(f.as_raw_fd(), libc::EPOLLIN as u32, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }
}
