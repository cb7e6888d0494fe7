//! `recv(2)` and `send(2)` on a borrowed socket: the two calls of every
//! round trip, as thin as the C floor's (one libc call, errno read at once).

use std::io;
use std::os::fd::RawFd;

/// The flags every `send` carries: `MSG_NOSIGNAL` where the platform has it
/// (`build.rs` probes it), so a peer that is gone is an `EPIPE` error, never
/// a `SIGPIPE`; elsewhere the socket was given `SO_NOSIGPIPE` when prepared.
#[cfg(selectloop_msg_nosignal)]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(selectloop_msg_nosignal))]
const SEND_FLAGS: libc::c_int = 0;

/// The most one call asks for: Apple's kernels refuse (`EINVAL`) a length
/// above `INT_MAX - 1`, so a bigger buffer is a short read or write there,
/// as in std and socket2; elsewhere `ssize_t`'s limit.
#[cfg(target_vendor = "apple")]
const MAX_LEN: usize = libc::c_int::MAX as usize - 1;
#[cfg(not(target_vendor = "apple"))]
const MAX_LEN: usize = isize::MAX as usize;

/// `recv(fd, buf, len, 0)`: how many bytes were read (0: end of file on a
/// stream). The callers pass the fd of a socket they own and hold borrowed
/// for the whole call, so the number cannot be closed and reused meanwhile
/// (a raw fd, not a `BorrowedFd`: getting one from `socket2` is an
/// out-of-line call on the hot path). A wrong fd could only ever be an
/// error or another file's bytes, never memory unsafety.
#[inline]
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    result(recv_raw(fd, buf))
}

/// [`recv`] as the syscall returns it: the byte count, or -1 with `errno`
/// set, for a caller that tests the count first (the round trip's path)
/// and turns the rest into a [`result`] at once.
#[inline]
pub(crate) fn recv_raw(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole
    // call; recv(2) touches no other memory of ours.
    unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len().min(MAX_LEN), 0) }
}

/// `send(fd, data, len, MSG_NOSIGNAL)` as the syscall returns it: how many
/// bytes the socket took, or -1 with `errno` set (see [`recv_raw`]). The fd
/// is the caller's, as for [`recv`].
#[inline]
pub(crate) fn send_raw(fd: RawFd, data: &[u8]) -> isize {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the whole
    // call; send(2) touches no other memory of ours.
    unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len().min(MAX_LEN),
            SEND_FLAGS,
        )
    }
}

/// A raw result as an `io::Result`: a negative count is the error in
/// `errno`, which must not have been touched since the call.
#[inline]
pub(crate) fn result(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn send_then_recv_round_trips_and_end_of_file_is_zero() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(result(send_raw(a.as_raw_fd(), b"ping")).unwrap(), 4);
        let mut buf = [0u8; 16];
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        drop(a);
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn send_to_a_closed_peer_is_epipe() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = result(send_raw(a.as_raw_fd(), b"x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
    }

    /// The test harness (like every Rust program) ignores SIGPIPE, which
    /// would hide a missing `MSG_NOSIGNAL`: the send runs in a child that
    /// restores the default action, which kills it if the signal comes.
    #[cfg(selectloop_msg_nosignal)]
    #[test]
    fn send_to_a_closed_peer_raises_no_sigpipe() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let fd = a.as_raw_fd();
        // SAFETY: between fork and _exit the child calls only
        // async-signal-safe functions (signal, send, _exit) and allocates
        // nothing (an OS error is an errno, not a heap value).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: see above; SIG_DFL is a valid disposition.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            let code = match result(send_raw(fd, b"x")) {
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => 0,
                _ => 1,
            };
            // SAFETY: ends the child at once, with no Rust clean-up.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is a valid out
        // pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child did not exit 0 (status {status:#x}): SIGPIPE killed it, or send did not fail with EPIPE"
        );
    }

    #[test]
    fn recv_with_nothing_waiting_would_block() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4];
        let err = recv(a.as_raw_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }
}
