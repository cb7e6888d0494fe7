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

/// `recv(fd, buf, len, 0)`: how many bytes were read (0: end of file on a
/// stream). The callers pass the fd of a socket they own (a raw fd, not a
/// `BorrowedFd`: getting one from `socket2` is an out-of-line call on the
/// hot path); a wrong fd is an `EBADF`/`ENOTSOCK` error, never undefined
/// behaviour.
#[inline]
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole
    // call; recv(2) touches no other memory of ours.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `send(fd, data, len, MSG_NOSIGNAL)`: how many bytes the socket took.
#[inline]
pub(crate) fn send(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is valid for reads of `data.len()` bytes for the whole
    // call; send(2) touches no other memory of ours.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), SEND_FLAGS) };
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
        assert_eq!(send(a.as_raw_fd(), b"ping").unwrap(), 4);
        let mut buf = [0u8; 16];
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        drop(a);
        assert_eq!(recv(b.as_raw_fd(), &mut buf).unwrap(), 0);
    }

    #[test]
    fn send_to_a_closed_peer_is_an_error_not_a_signal() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let err = send(a.as_raw_fd(), b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
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
