//! `file_wrapper` and `file_dispatcher`: any fd (a pipe, a terminal, stdin,
//! a regular file) driven by the loop as if it were a socket.
//!
//! [`FileWrapper`] is asyncore's `file_wrapper`: it owns a *duplicate* of the
//! fd it is given (so the caller's fd stays usable and is closed separately),
//! reads with `read(2)`, writes with `write(2)`, reports `SO_ERROR` as 0,
//! and closing it twice is harmless. [`Dispatcher::file_dispatcher`] is
//! asyncore's `file_dispatcher`: it wraps the fd, makes it non-blocking, and
//! starts `connected`.
//!
//! A note on regular files: select(2) and poll(2) always report a regular
//! file ready, so a file dispatcher on one simply reads or writes at full
//! speed; `recv` returning 0 is the end of the file.

use crate::dispatcher::Dispatcher;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// An owned duplicate of a file descriptor with the socket-like methods the
/// dispatcher needs (asyncore's `file_wrapper`).
#[derive(Debug)]
pub struct FileWrapper {
    file: Option<File>,
}

impl FileWrapper {
    /// Duplicates `fd` (`dup(2)`, close-on-exec) and wraps the copy. The
    /// original is untouched and still owned by the caller.
    ///
    /// Like [`Map::new`](crate::Map::new), this makes sure SIGPIPE is
    /// ignored (if it still has its default action), so a wrapper used on
    /// its own, with no map, cannot kill the process by writing to a pipe
    /// whose reader is gone.
    pub fn new(fd: impl AsFd) -> io::Result<Self> {
        crate::sys::ignore_sigpipe_once();
        let owned: OwnedFd = fd.as_fd().try_clone_to_owned()?;
        Ok(FileWrapper {
            file: Some(File::from(owned)),
        })
    }

    /// Reads up to `buf.len()` bytes (`read(2)`), like a socket's `recv`.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file()?.read(buf)
    }

    /// Writes `data` (`write(2)`), like a socket's `send`. Writing to a pipe
    /// whose reader is gone fails with `EPIPE`; the process does not die of
    /// SIGPIPE (see [`FileWrapper::new`]).
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        self.file()?.write(data)
    }

    /// `SO_ERROR` of a file: always none.
    pub fn so_error(&self) -> Option<io::Error> {
        None
    }

    /// The wrapped (duplicated) fd; `-1` once closed.
    pub fn fileno(&self) -> RawFd {
        self.file.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Closes the duplicate. Closing again does nothing.
    pub fn close(&mut self) {
        self.file = None;
    }

    /// Whether [`close`](Self::close) has run.
    pub fn is_closed(&self) -> bool {
        self.file.is_none()
    }

    /// Gives the fd up without closing it (it was closed elsewhere).
    pub(crate) fn forget(mut self) {
        if let Some(f) = self.file.take() {
            std::mem::forget(f);
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let Some(file) = &self.file else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
        fcntl(file, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(())
    }
}

/// Takes ownership of `fd` without duplicating it (unlike
/// [`FileWrapper::new`]): closing the wrapper closes it. Makes sure SIGPIPE
/// is ignored, as `new` does.
///
/// ```
/// use selectloop::{Dispatcher, FileWrapper};
/// use std::os::fd::OwnedFd;
/// let (reader, _writer) = std::os::unix::net::UnixStream::pair()?;
/// let fd = OwnedFd::from(reader);
/// let d = Dispatcher::from_file(FileWrapper::from(fd))?; // no dup(2)
/// assert!(d.connected());
/// # Ok::<(), std::io::Error>(())
/// ```
impl From<OwnedFd> for FileWrapper {
    fn from(fd: OwnedFd) -> Self {
        crate::sys::ignore_sigpipe_once();
        FileWrapper {
            file: Some(File::from(fd)),
        }
    }
}

/// `read` is [`recv`](FileWrapper::recv) (`read(2)`).
impl Read for FileWrapper {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
}

/// `write` is [`send`](FileWrapper::send) (`write(2)`); `flush` does
/// nothing.
impl Write for FileWrapper {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The wrapped fd; `-1` once closed.
impl AsRawFd for FileWrapper {
    fn as_raw_fd(&self) -> RawFd {
        self.fileno()
    }
}

/// The wrapped fd.
///
/// # Panics
///
/// Once [`close`](FileWrapper::close) has run: there is no fd to lend
/// (check [`is_closed`](FileWrapper::is_closed)).
impl AsFd for FileWrapper {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.file {
            Some(f) => f.as_fd(),
            None => panic!("as_fd on a closed FileWrapper"),
        }
    }
}

impl Dispatcher {
    /// A dispatcher for any fd (asyncore's `file_dispatcher`): duplicates
    /// `fd` into a [`FileWrapper`], makes the duplicate non-blocking, and
    /// starts `connected`. `recv` reads, `send` writes.
    ///
    /// Non-blocking mode is a property of the open file description, which
    /// the duplicate shares with `fd`: the caller's fd becomes non-blocking
    /// too, exactly as in asyncore.
    ///
    /// ```
    /// use selectloop::Dispatcher;
    /// let (reader, _writer) = std::os::unix::net::UnixStream::pair()?;
    /// let d = Dispatcher::file_dispatcher(&reader)?;
    /// assert!(d.connected());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file_dispatcher(fd: impl AsFd) -> io::Result<Self> {
        Self::from_file(FileWrapper::new(fd)?)
    }

    /// A dispatcher over an existing [`FileWrapper`]; made non-blocking and
    /// `connected` like [`file_dispatcher`](Self::file_dispatcher).
    pub fn from_file(file: FileWrapper) -> io::Result<Self> {
        file.set_nonblocking()?;
        Ok(Dispatcher::from_file_wrapper(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe().unwrap()
    }

    #[test]
    fn from_owned_fd_takes_it_without_a_dup() {
        let (r, w) = pipe();
        let raw = r.as_raw_fd();
        let mut reader = FileWrapper::from(r);
        assert_eq!(reader.as_raw_fd(), raw, "the same fd, not a copy");
        let mut writer = FileWrapper::from(w);
        assert_eq!(writer.send(b"x").unwrap(), 1);
        assert_eq!(reader.recv(&mut [0u8; 4]).unwrap(), 1);
        reader.close();
        assert_eq!(reader.as_raw_fd(), -1);
    }

    #[test]
    fn wrapper_dups_the_fd() {
        let (r, _w) = pipe();
        let fw = FileWrapper::new(&r).unwrap();
        assert_ne!(fw.fileno(), r.as_raw_fd());
        drop(fw);
        // the original is still open
        assert!(crate::sys::fd_is_open(r.as_raw_fd()));
    }

    #[test]
    fn wrapper_recv_and_send() {
        let (r, w) = pipe();
        let mut writer = FileWrapper::new(&w).unwrap();
        let mut reader = FileWrapper::new(&r).unwrap();
        assert_eq!(writer.send(b"hello").unwrap(), 5);
        let mut buf = [0u8; 16];
        assert_eq!(reader.recv(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn wrapper_so_error_reads_as_zero() {
        let (r, _w) = pipe();
        assert!(FileWrapper::new(&r).unwrap().so_error().is_none());
    }

    #[test]
    fn wrapper_close_twice_closes_once() {
        let (r, _w) = pipe();
        let mut fw = FileWrapper::new(&r).unwrap();
        fw.close();
        assert_eq!(fw.fileno(), -1);
        // Whatever now holds the old fd number must survive a second close.
        let (r2, w2) = pipe();
        fw.close();
        assert!(crate::sys::fd_is_open(r2.as_raw_fd()) && crate::sys::fd_is_open(w2.as_raw_fd()));
        assert!(fw.is_closed());
        assert_eq!(fw.fileno(), -1);
        assert!(fw.recv(&mut [0u8; 1]).is_err());
    }

    #[test]
    fn file_dispatcher_is_nonblocking_and_connected() {
        let (r, _w) = pipe();
        let mut d = Dispatcher::file_dispatcher(&r).unwrap();
        assert!(d.connected());
        let err = d.recv(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(d.take_error().unwrap().is_none());
    }
}
