//! Layer 1: thin, safe wrappers over the `select(2)`, `poll(2)` and (on
//! Linux) `epoll(7)` syscalls.
//!
//! Everything here is usable with no dispatcher and no [`Map`](crate::Map):
//! the `select_server` and `poll_server` examples are written against this
//! module alone. The wrappers own the details that hand-written loops get
//! wrong:
//!
//! * **`EINTR`**: a signal never surfaces as an error. The call is retried
//!   with the time that is *left*, never the full timeout again.
//! * **`FD_SETSIZE`**: inserting an fd that does not fit an `fd_set` is a
//!   typed error ([`FdSetSizeError`]) naming the fd and the limit, never a
//!   panic or a write past the end of the set.
//! * **Timeouts**: `None` blocks, `Some(Duration::ZERO)` returns at once,
//!   sub-millisecond timeouts are rounded *up* for poll(2), and huge ones are
//!   clamped rather than wrapped negative (which poll(2) reads as "forever").
//! * **Reuse**: [`PollFd`] is `#[repr(transparent)]` over `libc::pollfd`, so a
//!   `Vec<PollFd>` is passed to the kernel as is and can be refilled every
//!   iteration without allocating.
//!
//! All of the crate's `unsafe` code lives in this module.

#[cfg(target_os = "linux")]
mod epoll;
mod poll;
mod select;
pub(crate) mod signal;
mod sigpipe;
pub(crate) mod socket_io;
mod timeout;
pub(crate) mod wake;

#[cfg(target_os = "linux")]
pub use epoll::{Epoll, EpollEvent};
pub use poll::{poll, PollFd, PollFlags};
pub use select::{select, FdSet, FdSetSizeError, FD_SETSIZE};
pub(crate) use sigpipe::ignore_sigpipe_once;
pub use timeout::Deadline;

use std::io;

/// Turns a C-style return value into an `io::Result`: `-1` becomes
/// `io::Error::last_os_error()`, anything else is passed through.
///
/// Every libc call in this crate goes through this helper, so `errno` is read
/// right after the call that set it.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Returns `true` if `fd` is an open file descriptor (`fcntl(F_GETFD)`
/// succeeds). Used by the loop to find the channel whose fd was closed behind
/// its back when select(2) fails with `EBADF`.
pub(crate) fn fd_is_open(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags of `fd`; it never touches
    // memory, and an fd that is not open simply yields EBADF.
    let ret = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    cvt(ret).is_ok()
}

/// Views an initialised byte buffer as the `MaybeUninit` buffer that
/// `socket2`'s `recv_from` and `recv_out_of_band` take.
pub(crate) fn as_uninit_mut(buf: &mut [u8]) -> &mut [std::mem::MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has the layout of u8, and the only writers of
    // the returned slice are socket2's recv_from and recv_out_of_band, which
    // write initialised bytes (the kernel's copy) and never de-initialise
    // any, so `buf` stays fully initialised.
    unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) }
}
