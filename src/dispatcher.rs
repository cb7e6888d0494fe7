//! The dispatcher: a non-blocking socket (or file) plus the state flags of
//! asyncore's `dispatcher` (`connected`, `accepting`, `connecting`, `addr`).
//!
//! In Python a dispatcher is one object that is both the socket and the
//! event handler. Here the two halves are split: [`Dispatcher`] is the
//! socket half that your [`Handler`](crate::Handler) is *handed* on every
//! event, and the handler is your own struct. That split is what lets a
//! handler borrow its socket and its own state at the same time.

use crate::accept_pause::{is_fd_shortage, AcceptPause, ACCEPT_BACKOFF};
use crate::deadline::Deadline;
use crate::file_dispatcher::FileWrapper;
use crate::sys::socket_io;
use socket2::{Domain, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// How long a [`linger_close`](Dispatcher::linger_close) waits for the
/// peer's end of file before closing anyway.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// How many bytes a [`linger_close`](Dispatcher::linger_close) reads and
/// drops at most before closing anyway.
pub const LINGER_BYTES: usize = 1 << 20;

/// Error numbers that mean "the peer is gone" (asyncore's `_DISCONNECTED`).
/// A handler error with one of these leads to `handle_close`, any other to
/// `handle_error`.
pub const DISCONNECTED: [i32; 6] = [
    libc::ECONNRESET,
    libc::ENOTCONN,
    libc::ESHUTDOWN,
    libc::ECONNABORTED,
    libc::EPIPE,
    libc::EBADF,
];

/// Whether `err` means the peer is gone (its errno is in [`DISCONNECTED`]).
pub fn is_disconnected(err: &io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| DISCONNECTED.contains(&code))
}

/// Why a connection ended, as [`Dispatcher::close_reason`] reports it.
///
/// asyncore's `recv` turns a reset (`ECONNRESET`) into the same empty read
/// as a clean end of file, so no handler could tell a response cut short by
/// a reset from a complete one. [`Dispatcher::recv`] keeps that rule
/// (`Ok(0)`, then `handle_close`), and records which it was here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer shut down its write side cleanly: `recv` read 0 bytes (a
    /// FIN). Everything it sent has been read.
    Eof,
    /// The peer reset the connection (`ECONNRESET`): data it sent, or that
    /// was sent to it, may have been lost.
    Reset,
    /// Another error that means the peer is gone (`EPIPE`, `ENOTCONN`,
    /// `ESHUTDOWN`, `ECONNABORTED`, `EBADF`: see [`DISCONNECTED`]), with its
    /// errno.
    Gone(i32),
}

impl CloseReason {
    fn from_error(err: &io::Error) -> CloseReason {
        match err.raw_os_error() {
            Some(libc::ECONNRESET) => CloseReason::Reset,
            Some(code) => CloseReason::Gone(code),
            None => CloseReason::Gone(0),
        }
    }
}

pub(crate) enum Io {
    Socket(Socket),
    File(FileWrapper),
    /// No fd at all: a [`Timer`](crate::Timer), which only has a deadline.
    NoFd,
    Closed,
}

/// A socket (or file) channel with asyncore's state: the socket half of
/// Python's `asyncore.dispatcher`.
///
/// Create one with [`Dispatcher::create_socket`] (asyncore's
/// `create_socket(family, type)`), [`Dispatcher::from_socket`] (asyncore's
/// `dispatcher(sock)`), or [`Dispatcher::file_dispatcher`] (asyncore's
/// `file_dispatcher(fd)`), then register it with a handler:
/// [`Map::add`](crate::Map::add) or [`Context::add`](crate::Context::add).
///
/// All socket operations are non-blocking and follow asyncore's rules:
///
/// | operation | would block | peer gone (`ECONNRESET`, `EPIPE`, ...) |
/// |---|---|---|
/// | [`send`](Self::send) | `Ok(0)` | `Ok(0)`, and `handle_close` runs after the handler returns |
/// | [`recv`](Self::recv) | `Err(WouldBlock)`, which the loop ignores | `Ok(0)`, and `handle_close` runs after the handler returns |
/// | [`accept`](Self::accept) | `Ok(None)` | `Ok(None)` (`ECONNABORTED`) |
/// | [`connect`](Self::connect) | `Ok(())`, `handle_connect` later | `Err` |
///
/// `recv` returning `Ok(0)` on a stream means the peer closed: the loop
/// calls `handle_close` as soon as the current handler returns, as asyncore's
/// `recv` does.
pub struct Dispatcher {
    pub(crate) io: Io,
    /// The fd of `io` (-1: none, or closed), kept beside it: `io` is set
    /// only at construction and replaced only by closing, and the loop
    /// reads the fd after every event.
    fd: RawFd,
    /// asyncore's `connected`, `accepting`, `connecting`: at most one is
    /// true, so they are one value.
    state: State,
    /// Streams read 0 bytes at EOF; datagram sockets may get empty datagrams.
    stream: bool,
    addr: Option<SockAddr>,
    /// Set by `recv`/`send` when the peer is gone; the loop calls
    /// `handle_close` after the handler returns and clears it.
    close_pending: bool,
    /// When `handle_timeout` is due (see [`set_deadline`](Self::set_deadline)).
    pub(crate) deadline: Deadline,
    /// Not yet looked at by a loop: a dispatcher put in place of another
    /// (`*ch = Dispatcher::...`) is told apart from it by this, even when
    /// its fd got the same number.
    fresh: bool,
    /// Set by `accept` (or `pause_accepting`) on EMFILE/ENFILE.
    accept_pause: AcceptPause,
    /// The listening socket's identity (device, inode), taken at `listen`:
    /// tells an fd closed and reused behind this dispatcher's back.
    listening: Option<(u64, u64)>,
    /// What `recv`/`send` saw end the connection (the first cause wins).
    close_reason: Option<CloseReason>,
    /// A lingering close is under way: the bytes read and dropped so far.
    lingering: Option<usize>,
    /// The default handlers that have logged their warning on this channel
    /// (each logs once per channel, never once per iteration).
    warned: Warned,
}

/// A dispatcher's connection state: asyncore's three flags `connected`,
/// `accepting` and `connecting`, of which at most one is ever true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// None of the three: new, unconnected, or closed.
    Idle,
    /// A non-blocking connect is in progress.
    Connecting,
    /// Connected (or a file dispatcher).
    Connected,
    /// Listening.
    Accepting,
}

/// Which default handlers have warned on a channel already.
#[derive(Clone, Copy, Default)]
struct Warned {
    expt: bool,
    read: bool,
    write: bool,
}

impl Dispatcher {
    /// [`state_code`](Self::state_code) of a connecting socket.
    pub(crate) const CONNECTING: u8 = State::Connecting as u8;
    /// [`state_code`](Self::state_code) of a listener.
    pub(crate) const ACCEPTING: u8 = State::Accepting as u8;

    fn with_io(io: Io, stream: bool) -> Self {
        let fd = match &io {
            Io::Socket(s) => s.as_raw_fd(),
            Io::File(f) => f.fileno(),
            Io::NoFd | Io::Closed => -1,
        };
        Dispatcher {
            io,
            fd,
            state: State::Idle,
            stream,
            addr: None,
            close_pending: false,
            accept_pause: AcceptPause::default(),
            listening: None,
            warned: Warned::default(),
            close_reason: None,
            lingering: None,
            deadline: Deadline::default(),
            fresh: true,
        }
    }

    /// A dispatcher with no fd, for a [`Timer`](crate::Timer).
    pub(crate) fn without_fd() -> Self {
        Self::with_io(Io::NoFd, false)
    }

    /// Creates a new non-blocking socket (asyncore's `create_socket(family,
    /// type)`): `Domain::IPV4`, `Domain::IPV6` or `Domain::UNIX`, and
    /// `Type::STREAM` or `Type::DGRAM`. The fd is close-on-exec.
    ///
    /// ```
    /// use selectloop::{Dispatcher, Domain, Type};
    /// let d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?;
    /// assert!(!d.connected() && !d.accepting());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_socket(domain: Domain, ty: Type) -> io::Result<Self> {
        let sock = Socket::new(domain, ty, None)?;
        Self::prepare(&sock)?;
        Ok(Self::with_io(Io::Socket(sock), ty == Type::STREAM))
    }

    fn prepare(sock: &Socket) -> io::Result<()> {
        sock.set_nonblocking(true)?;
        sock.set_cloexec(true)?;
        #[cfg(not(selectloop_msg_nosignal))]
        sock.set_nosigpipe(true)?;
        Ok(())
    }

    /// Wraps an existing socket (asyncore's `dispatcher(sock)`), e.g. one
    /// returned by [`accept`](Self::accept) or a `std::net::TcpStream`.
    ///
    /// The socket is made non-blocking. If it has a peer, the dispatcher
    /// starts `connected` with `addr` set to the peer's address; an
    /// unconnected socket (`ENOTCONN`/`EINVAL`) starts unconnected; any other
    /// failure to read the peer address is returned.
    pub fn from_socket(sock: impl Into<Socket>) -> io::Result<Self> {
        let sock: Socket = sock.into();
        Self::prepare(&sock)?;
        let stream = sock.r#type().map_or(true, |t| t == Type::STREAM);
        let peer = match sock.peer_addr() {
            Ok(addr) => Some(addr),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTCONN) | Some(libc::EINVAL)) => None,
            Err(e) => return Err(e),
        };
        let mut d = Self::with_io(Io::Socket(sock), stream);
        if let Some(addr) = peer {
            d.state = State::Connected;
            d.addr = Some(addr);
        }
        Ok(d)
    }

    /// Wraps a connection that [`accept`](Self::accept) returned, with the
    /// peer address it returned: what `handle_accepted` usually does with
    /// its `sock` and `addr`. The result is the same as
    /// [`from_socket`](Self::from_socket)'s, for fewer system calls: the
    /// accepted socket is already close-on-exec (socket2 accepts with
    /// `SOCK_CLOEXEC`) and its peer is known, so only non-blocking mode is
    /// set.
    ///
    /// ```
    /// use selectloop::{Dispatcher, Domain, Type};
    /// let mut server = Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?;
    /// server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())?;
    /// server.listen(1)?;
    /// let to = server.addr().and_then(|a| a.as_socket()).unwrap();
    /// let _client = std::net::TcpStream::connect(to)?;
    /// let (sock, addr) = loop {
    ///     // Non-blocking: in a loop, handle_accept runs when it is ready.
    ///     if let Some(pair) = server.accept()? {
    ///         break pair;
    ///     }
    /// };
    /// let conn = Dispatcher::from_accepted(sock, addr)?;
    /// assert!(conn.connected() && conn.addr().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_accepted(sock: Socket, addr: SockAddr) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        #[cfg(not(selectloop_msg_nosignal))]
        sock.set_nosigpipe(true)?;
        let mut d = Self::with_io(Io::Socket(sock), true);
        d.state = State::Connected;
        d.addr = Some(addr);
        Ok(d)
    }

    pub(crate) fn from_file_wrapper(file: FileWrapper) -> Self {
        let mut d = Self::with_io(Io::File(file), true);
        d.state = State::Connected;
        d
    }

    /// The underlying socket, for options this type does not wrap
    /// (`setsockopt`), or `None` for a file dispatcher or a closed one.
    pub fn socket(&self) -> Option<&Socket> {
        match &self.io {
            Io::Socket(s) => Some(s),
            _ => None,
        }
    }

    fn sock(&self) -> io::Result<&Socket> {
        match &self.io {
            Io::Socket(s) => Ok(s),
            Io::File(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "not a socket: this dispatcher wraps a file descriptor",
            )),
            Io::NoFd | Io::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// The fd, or `None` once closed (asyncore's `fileno()`) or for a
    /// [`Timer`](crate::Timer), which has none.
    #[inline]
    pub fn fileno(&self) -> Option<RawFd> {
        (self.fd >= 0).then_some(self.fd)
    }

    /// Whether this is a datagram socket (not a stream, not a file) with
    /// no peer and no `connect` under way: `send` has nowhere to go.
    #[inline]
    pub(crate) fn is_datagram_without_peer(&self) -> bool {
        !self.stream && self.state == State::Idle && matches!(self.io, Io::Socket(_))
    }

    /// Whether the connection is established (asyncore's `connected`).
    #[inline]
    pub fn connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether this is a listening socket (asyncore's `accepting`).
    #[inline]
    pub fn accepting(&self) -> bool {
        self.state == State::Accepting
    }

    /// Whether a non-blocking `connect` is in progress (asyncore's
    /// `connecting`).
    #[inline]
    pub fn connecting(&self) -> bool {
        self.state == State::Connecting
    }

    /// The address bound to (after [`bind`](Self::bind), the real one, with
    /// the port the kernel chose for port 0), connected to, or of the peer
    /// (asyncore's `addr`).
    pub fn addr(&self) -> Option<&SockAddr> {
        self.addr.as_ref()
    }

    /// Whether [`close`](Self::close) has run.
    #[inline]
    pub fn is_closed(&self) -> bool {
        matches!(self.io, Io::Closed)
    }

    /// Sets `SO_REUSEADDR`, so a server can bind its port again right after
    /// a restart (asyncore's `set_reuse_addr`).
    pub fn set_reuse_addr(&self) -> io::Result<()> {
        self.sock()?.set_reuse_address(true)
    }

    /// Sets `TCP_NODELAY` (`true`: send small segments at once instead of
    /// waiting, per Nagle's algorithm, for the previous one to be
    /// acknowledged). A proxy or a request/response protocol wants it:
    /// through a forwarder without it, small replies wait up to an ACK
    /// delay (tens of milliseconds at the 90th percentile). asyncore has no
    /// such call; `self.socket.setsockopt(...)` was the way.
    ///
    /// ```
    /// use selectloop::{Dispatcher, Domain, Type};
    /// let d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM)?;
    /// d.set_nodelay(true)?;
    /// assert!(d.nodelay()?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock()?.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock()?.nodelay()
    }

    /// Binds the socket (asyncore's `bind`). `addr` may be a
    /// `std::net::SocketAddr` or a [`SockAddr`] (`SockAddr::unix(path)` for
    /// Unix-domain sockets). Afterwards [`addr`](Self::addr) is the bound
    /// address as the kernel reports it.
    pub fn bind(&mut self, addr: impl Into<SockAddr>) -> io::Result<()> {
        let addr = addr.into();
        let sock = self.sock()?;
        sock.bind(&addr)?;
        self.addr = Some(sock.local_addr().unwrap_or(addr));
        Ok(())
    }

    /// Starts listening (asyncore's `listen`); the dispatcher is `accepting`
    /// from now on, and read events become `handle_accept`.
    pub fn listen(&mut self, backlog: i32) -> io::Result<()> {
        let sock = self.sock()?;
        sock.listen(backlog)?;
        self.listening = file_id(sock);
        self.state = State::Accepting;
        Ok(())
    }

    /// Starts a non-blocking connect (asyncore's `connect`).
    ///
    /// Returns at once; the loop calls `handle_connect` when the connection
    /// is established (the first read or write event), or routes the error
    /// (`ECONNREFUSED`, ...) to `handle_error`. While `connecting`, the loop
    /// always asks for write readiness, whatever `writable()` says, because
    /// that is how the kernel reports a finished connect.
    pub fn connect(&mut self, addr: impl Into<SockAddr>) -> io::Result<()> {
        let addr = addr.into();
        let sock = self.sock()?;
        let result = sock.connect(&addr);
        self.state = State::Connecting;
        match result {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINPROGRESS)
                        | Some(libc::EALREADY)
                        | Some(libc::EAGAIN)
                        | Some(libc::EISCONN)
                ) => {}
            Err(e) => {
                self.state = State::Idle;
                return Err(e);
            }
        }
        self.addr = Some(addr);
        Ok(())
    }

    /// Completes a connect: reads `SO_ERROR`; 0 means connected.
    pub(crate) fn finish_connect(&mut self) -> io::Result<()> {
        if let Some(err) = self.take_error()? {
            self.state = State::Idle;
            return Err(err);
        }
        self.state = State::Connected;
        Ok(())
    }

    /// Reads and clears the pending socket error (`SO_ERROR`); always
    /// `Ok(None)` for a file dispatcher, as asyncore's `file_wrapper` does.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.io {
            Io::Socket(s) => s.take_error(),
            Io::File(f) => Ok(f.so_error()),
            Io::NoFd | Io::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// Accepts a connection (asyncore's `accept`): `Ok(Some((sock, addr)))`,
    /// or `Ok(None)` when there is none after all (would block,
    /// `ECONNABORTED`).
    ///
    /// Out of file descriptors (`EMFILE`, `ENFILE`) is also `Ok(None)`, with a
    /// warning logged: the listener stays open and leaves the read set until
    /// a channel of the map closes or 100 ms pass, so the loop neither dies
    /// (asyncore closes the listener) nor spins on a listener that stays
    /// readable. Pending connections wait in the kernel's backlog meanwhile.
    ///
    /// An error that means this listener can never accept again closes it,
    /// and is returned: `EINVAL` (its socket was shut down); `EBADF`,
    /// `ENOTSOCK`, or `EINVAL` from a socket that is not the one it listened
    /// on (its fd was closed behind its back: the number, which may be
    /// another file's now, is forgotten, not closed again).
    pub fn accept(&mut self) -> io::Result<Option<(Socket, SockAddr)>> {
        match self.sock()?.accept() {
            Ok(pair) => {
                self.accept_pause.clear();
                Ok(Some(pair))
            }
            Err(e) if is_fd_shortage(&e) => {
                self.pause_accepting_for(&e);
                Ok(None)
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN)
                | Some(libc::ECONNABORTED)
                | Some(libc::EINTR)
                | Some(libc::EPROTO) => Ok(None),
                // The listener can never accept again, and it stays readable
                // (select(2) has no POLLHUP to tell): closed here, or the
                // default `handle_error`, which keeps a listener, would see
                // this error on every pass.
                Some(libc::EINVAL) if self.accepting() => {
                    // Shut down, if its socket is still its own; or its fd
                    // was closed behind its back and reused by a socket
                    // that does not listen: that one is not closed here.
                    let own = self.sock().ok().and_then(file_id);
                    if own.is_some() && own == self.listening {
                        self.close();
                    } else {
                        self.forget_fd();
                    }
                    Err(e)
                }
                Some(libc::EBADF) | Some(libc::ENOTSOCK) if self.accepting() => {
                    // Its fd was closed behind its back (the number may
                    // belong to another file now): not closed again.
                    self.forget_fd();
                    Err(e)
                }
                _ => Err(e),
            },
        }
    }

    /// Pauses accepting as an `EMFILE` from [`accept`](Self::accept) does:
    /// the listener leaves the read set until a channel of the map closes
    /// or 100 ms pass, and connections wait in the kernel's backlog.
    ///
    /// For a listener whose `handle_accept` finds that it cannot set up a
    /// connection for lack of fds *before* accepting it (a forwarder that
    /// creates the remote socket first), so the client stays queued instead
    /// of being accepted and dropped. The default `handle_accept` calls it
    /// when `handle_accepted` fails with `EMFILE`, `ENFILE`, `ENOBUFS` or
    /// `ENOMEM`.
    pub fn pause_accepting(&mut self) {
        self.accept_pause.start();
    }

    /// [`pause_accepting`](Self::pause_accepting), with a warning naming
    /// the error.
    pub(crate) fn pause_accepting_for(&mut self, err: &io::Error) {
        log::warn!(
            "{:?}: out of descriptors ({}); pausing accepts until a channel closes (at most {} ms)",
            self,
            err,
            ACCEPT_BACKOFF.as_millis()
        );
        self.pause_accepting();
    }

    /// The connection state as one number (compare with
    /// [`CONNECTING`](Self::CONNECTING), [`ACCEPTING`](Self::ACCEPTING)),
    /// for the loop's packed record of what a channel wants.
    #[inline]
    pub(crate) fn state_code(&self) -> u8 {
        self.state as u8
    }

    /// Whether accepting is paused (fd shortage) and the pause has not been
    /// lifted yet.
    #[inline]
    pub fn is_accept_paused(&self) -> bool {
        self.accept_pause.is_on()
    }

    /// Stamps a fresh pause with the map's removal count from before the
    /// handler ran, so a channel that closes later in the same pass (freeing
    /// an fd) lifts the pause at the next one.
    #[inline]
    pub(crate) fn stamp_accept_pause(&mut self, removals: u64) {
        self.accept_pause.stamp(removals);
    }

    /// The loop's view of a pause: stamps the map's removal count on a
    /// fresh pause, and says whether the listener is still paused.
    pub(crate) fn accept_paused(&mut self, now: Instant, removals: u64) -> bool {
        self.accept_pause.still_on(now, removals)
    }

    /// Time left in a pause, so the loop can wake up to retry.
    pub(crate) fn accept_pause_left(&self, now: Instant) -> Option<Duration> {
        self.accept_pause.left(now)
    }

    /// Sends `data` (asyncore's `send`); returns how many bytes the kernel
    /// took, `0` if it would block. A gone peer also gives `0` and schedules
    /// `handle_close`. Never raises SIGPIPE.
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let res = match &mut self.io {
            Io::Socket(s) => {
                // The round trip's path: one libc call, the count tested
                // first.
                let n = socket_io::send_raw(s.as_raw_fd(), data);
                if n >= 0 {
                    return Ok(n as usize);
                }
                socket_io::result(n)
            }
            Io::File(f) => f.send(data),
            Io::NoFd | Io::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
        match res {
            Ok(n) => Ok(n),
            Err(e) => self.send_failed(e),
        }
    }

    /// `send`'s errors: would block is `Ok(0)`, "peer gone" a pending close.
    #[cold]
    fn send_failed(&mut self, e: io::Error) -> io::Result<usize> {
        if e.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else if is_disconnected(&e) {
            self.close_pending = true;
            self.note_close(CloseReason::from_error(&e));
            Ok(0)
        } else {
            Err(e)
        }
    }

    /// Receives into `buf` (asyncore's `recv`); returns how many bytes were
    /// read. On a stream, `Ok(0)` means the peer closed (or is gone), and
    /// `handle_close` runs as soon as the handler returns. Would block is
    /// `Err(WouldBlock)`, which the loop ignores if the handler passes it on.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let (Io::Socket(s), None) = (&self.io, self.lingering) {
            // The round trip's path: one libc call, the count tested first.
            let n = socket_io::recv_raw(s.as_raw_fd(), buf);
            if n > 0 {
                return Ok(n as usize);
            }
            return self.recv_ended(socket_io::result(n), buf.is_empty());
        }
        self.recv_other(buf)
    }

    /// `recv` while lingering, or on a file or no fd at all.
    #[cold]
    fn recv_other(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.lingering.is_some() {
            // Closing: what arrives now is read and dropped (see
            // `linger_close`); the handler sees a spurious wake-up.
            self.linger_drain();
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let res = match &mut self.io {
            Io::Socket(s) => socket_io::recv(s.as_raw_fd(), buf),
            Io::File(f) => f.recv(buf),
            Io::NoFd | Io::Closed => Err(io::Error::from_raw_os_error(libc::EBADF)),
        };
        match res {
            Ok(n) if n > 0 => Ok(n),
            res => self.recv_ended(res, buf.is_empty()),
        }
    }

    /// `recv` read nothing, or failed: on a stream, 0 bytes into a non-empty
    /// buffer is the peer's end of file, and an error that means "peer
    /// gone" is `Ok(0)` too; either makes the close pending.
    #[cold]
    fn recv_ended(&mut self, res: io::Result<usize>, empty_buf: bool) -> io::Result<usize> {
        match res {
            Ok(0) if self.stream && !empty_buf => {
                self.close_pending = true;
                self.note_close(CloseReason::Eof);
                Ok(0)
            }
            Err(e) if is_disconnected(&e) => {
                self.close_pending = true;
                self.note_close(CloseReason::from_error(&e));
                Ok(0)
            }
            other => other,
        }
    }

    /// Why the connection ended, once `recv` or `send` has seen it end:
    /// [`CloseReason::Eof`] for a clean end of file, [`CloseReason::Reset`]
    /// for a reset, [`CloseReason::Gone`] for the other "peer gone" errors;
    /// `None` while it has not (or when `handle_close` came from the loop,
    /// e.g. a hang-up reported by poll with nothing left to read: read
    /// [`take_error`](Self::take_error) then). The first cause seen stays,
    /// except that an error after an end of file replaces it.
    ///
    /// asyncore could not tell a reset from a clean close; here `recv` still
    /// returns `Ok(0)` for both (asyncore's rule), and a handler that cares
    /// (a client that must not take a cut response for a whole one) asks in
    /// `handle_close`:
    ///
    /// ```
    /// use selectloop::{CloseReason, Context, Dispatcher, Handler};
    /// use std::io;
    ///
    /// struct Download { complete: bool }
    ///
    /// impl Handler for Download {
    ///     fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
    ///         self.complete = ch.close_reason() == Some(CloseReason::Eof);
    ///         ch.close();
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// Records why the connection ended: the first cause, except that an
    /// error after a clean end of file (the peer half-closed, then went
    /// away while output was still being delivered) replaces it.
    fn note_close(&mut self, reason: CloseReason) {
        if matches!(self.close_reason, None | Some(CloseReason::Eof)) {
            self.close_reason = Some(reason);
        }
    }

    /// Whether the peer has sent its end of file (or is gone): nothing more
    /// will be read, though output may still be delivered to a peer that
    /// only shut down its write side.
    #[inline]
    pub fn read_ended(&self) -> bool {
        self.close_reason.is_some()
    }

    /// Whether the peer reset the connection (`ECONNRESET` seen by `recv`
    /// or `send`): `close_reason() == Some(CloseReason::Reset)`.
    pub fn was_reset(&self) -> bool {
        self.close_reason == Some(CloseReason::Reset)
    }

    /// Receives out-of-band ("urgent") data, which is what
    /// [`handle_expt`](crate::Handler::handle_expt) announces (Python:
    /// `self.socket.recv(1, socket.MSG_OOB)`). Would block is
    /// `Err(WouldBlock)`.
    pub fn recv_oob(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock()?
            .recv_out_of_band(crate::sys::as_uninit_mut(buf))
    }

    /// What the default [`handle_expt`](crate::Handler::handle_expt) does:
    /// reads and drops the urgent byte (`MSG_OOB`) that made the socket
    /// "exceptional", and logs a warning the first time only.
    ///
    /// asyncore's default only logs. But with just the urgent byte unread,
    /// Linux keeps reporting the except set / `POLLPRI` (without `POLLIN`),
    /// so one byte sent with `MSG_OOB` made every later iteration return at
    /// once: 100 % CPU and a warning per pass for as long as the peer stayed
    /// connected. Consuming the byte ends the condition; the warning is
    /// logged once per channel.
    pub fn discard_urgent_data(&mut self) -> io::Result<()> {
        let mut byte = [0u8; 1]; // TCP keeps one urgent byte
        let result = match &self.io {
            Io::Socket(s) => s.recv_out_of_band(crate::sys::as_uninit_mut(&mut byte)),
            Io::File(_) => Ok(0),
            Io::NoFd | Io::Closed => return Ok(()),
        };
        if !self.warned.expt {
            self.warned.expt = true;
            log::warn!(
                "{:?}: unhandled incoming priority event; urgent data dropped (logged once per channel)",
                self
            );
        }
        match result {
            Ok(_) => Ok(()),
            // Nothing urgent after all (read already, or inline with
            // SO_OOBINLINE, where `recv` gets it), or would block.
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::EINVAL) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// What the default [`handle_write`](crate::Handler::handle_write) of a
    /// plain dispatcher does: log "unhandled write event", the first time
    /// only. From then on [`unhandled_write`](Self::unhandled_write) is
    /// `true` and the default [`writable`](crate::Handler::writable) is
    /// `false`: a handler that overrides neither asks for write readiness no
    /// more.
    ///
    /// asyncore's defaults (`writable()` true, `handle_write` only logs)
    /// made such a dispatcher (a UDP server that overrides only
    /// `handle_read`) wake at once on every pass: 100 % CPU and a warning
    /// per pass.
    pub fn warn_unhandled_write(&mut self) {
        if !self.warned.write {
            self.warned.write = true;
            log::warn!(
                "{:?}: unhandled write event; no longer asking for write readiness (override writable() and handle_write)",
                self
            );
        }
    }

    /// Whether the default `handle_write` ran: the default `writable()` is
    /// `false` from then on.
    #[inline]
    pub fn unhandled_write(&self) -> bool {
        self.warned.write
    }

    /// What the default [`handle_read`](crate::Handler::handle_read) does:
    /// log "unhandled read event", the first time only. From then on
    /// [`unhandled_read`](Self::unhandled_read) is `true` and the default
    /// [`readable`](crate::Handler::readable) is `false`, so data that
    /// nobody reads cannot make the loop spin (asyncore logs on every pass).
    pub fn warn_unhandled_read(&mut self) {
        if !self.warned.read {
            self.warned.read = true;
            log::warn!(
                "{:?}: unhandled read event; no longer asking for read readiness (override handle_read)",
                self
            );
        }
    }

    /// Whether the default `handle_read` ran: the default `readable()` is
    /// `false` from then on.
    #[inline]
    pub fn unhandled_read(&self) -> bool {
        self.warned.read
    }

    /// Sends a datagram to `addr` (for `Type::DGRAM` sockets); `Ok(0)` if it
    /// would block. Never raises SIGPIPE.
    pub fn sendto(&mut self, data: &[u8], addr: &SockAddr) -> io::Result<usize> {
        match send_to_nosignal(self.sock()?, data, addr) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            other => other,
        }
    }

    /// Receives a datagram and its sender's address (for `Type::DGRAM`
    /// sockets). Would block is `Err(WouldBlock)`.
    pub fn recvfrom(&mut self, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
        self.sock()?.recv_from(crate::sys::as_uninit_mut(buf))
    }

    /// Shuts down one or both directions of a connected socket (for example
    /// `Shutdown::Write` to send EOF while still reading).
    pub fn shutdown(&mut self, how: Shutdown) -> io::Result<()> {
        let sock = self.sock()?;
        sock.shutdown(how)?;
        if how == Shutdown::Write {
            log::trace!(
                "fd {}: half-close passed on: shutdown(SHUT_WR)",
                sock.as_raw_fd()
            );
        }
        Ok(())
    }

    /// Closes a connection whose last byte has been sent, the way nginx's
    /// lingering close does: `shutdown(SHUT_WR)` (the peer gets its end of
    /// file after everything sent), then read and drop what the peer still
    /// sends until its end of file, [`LINGER_BYTES`] or [`LINGER_TIME`],
    /// then close. `close_when_done` and the delivery after a half-close
    /// end this way.
    ///
    /// Why: closing a TCP socket whose receive buffer holds unread input
    /// makes Linux send a reset instead of a FIN, and a reset makes the
    /// peer's kernel throw away what it received and its application has
    /// not read yet: the tail of the answer (6.36 of 8.39 MB arrived, then
    /// `Connection reset by peer`). asyncore closed at once.
    ///
    /// If no input is waiting, the socket closes at once (after the
    /// shutdown). Otherwise the channel stays in the map, lingering
    /// ([`is_lingering`](Self::is_lingering)): the default `readable()` is
    /// `true` and `writable()` `false`, [`recv`](Self::recv) reads and drops
    /// what arrives and returns would-block, and the deadline is set to
    /// [`LINGER_TIME`]: when it passes, the loop closes the channel (its
    /// `handle_timeout` is not called, and a deadline set meanwhile can
    /// only bring the close earlier). A file dispatcher, a datagram socket
    /// or an unconnected one just closes.
    pub fn linger_close(&mut self) {
        let Io::Socket(sock) = &self.io else {
            return self.close();
        };
        if !self.stream || !self.connected() || sock.shutdown(Shutdown::Write).is_err() {
            return self.close();
        }
        self.lingering = Some(0);
        if self.linger_drain() {
            return; // closed: end of file, error or bound
        }
        if self.lingering == Some(0) {
            // Nothing unread: the close sends a FIN, not a reset.
            return self.close();
        }
        log::debug!(
            "{:?}: lingering close, waiting for the peer's end of file",
            self
        );
        if let Some(fd) = self.fileno() {
            log::trace!(
                "fd {fd}: lingering close: shutdown(SHUT_WR), input discarded until the peer's EOF (at most {} s)",
                LINGER_TIME.as_secs()
            );
        }
        self.deadline.period = None;
        self.deadline.due = Some(crate::deadline::after(LINGER_TIME));
    }

    /// Whether a [`linger_close`](Self::linger_close) is under way.
    #[inline]
    pub fn is_lingering(&self) -> bool {
        self.lingering.is_some()
    }

    /// Reads and drops what the peer sent, while lingering; closes at its
    /// end of file, an error, or past [`LINGER_BYTES`]. Returns whether the
    /// channel is closed.
    pub(crate) fn linger_drain(&mut self) -> bool {
        let mut sink = [0u8; 16 * 1024];
        loop {
            let Some(dropped) = self.lingering else {
                return self.is_closed();
            };
            let res = match &self.io {
                Io::Socket(s) => (&*s).read(&mut sink),
                _ => Ok(0),
            };
            match res {
                Ok(0) => break,
                Ok(n) if dropped + n > LINGER_BYTES => break,
                Ok(n) => self.lingering = Some(dropped + n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.close();
        true
    }

    /// Closes the socket (asyncore's `close`). The channel leaves the map as
    /// soon as the handler returns and gets no further events. Closing twice
    /// is harmless: the fd is closed exactly once.
    pub fn close(&mut self) {
        self.io = Io::Closed;
        self.fd = -1;
        self.state = State::Idle;
        self.accept_pause.clear();
        self.lingering = None;
        self.deadline = Deadline::default();
    }

    /// Forgets an fd that was closed behind this dispatcher's back (poll(2)
    /// said `POLLNVAL`, select(2) said `EBADF`): the number may already
    /// belong to someone else, so it must not be closed again.
    pub(crate) fn forget_fd(&mut self) {
        match std::mem::replace(&mut self.io, Io::Closed) {
            Io::Socket(s) => std::mem::forget(s),
            Io::File(f) => f.forget(),
            Io::NoFd | Io::Closed => {}
        }
        self.close();
    }

    /// Whether no loop has looked at this dispatcher yet (then it is from
    /// now on).
    #[inline]
    pub(crate) fn take_fresh(&mut self) -> bool {
        std::mem::take(&mut self.fresh)
    }

    /// Whether no loop has looked at this dispatcher yet.
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh
    }

    #[inline]
    pub(crate) fn take_close_pending(&mut self) -> bool {
        std::mem::take(&mut self.close_pending)
    }
}

/// A file's identity (device, inode), to tell whether an fd still names it.
fn file_id(sock: &Socket) -> Option<(u64, u64)> {
    let st = nix::sys::stat::fstat(sock).ok()?;
    Some((st.st_dev as u64, st.st_ino as u64))
}

/// Deadlines: when the loop calls [`handle_timeout`](crate::Handler::handle_timeout).
///
/// Each channel has at most one deadline. Setting it costs no allocation and
/// O(1): the loop notices the new value the next time it looks at the
/// channel, so an idle timeout pushed back on every read
/// (`ch.set_timeout(IDLE)` in `handle_read`) is cheap. A deadline fires
/// once, never early, and in deadline order with the others; it is cleared
/// before `handle_timeout` runs (set it again there to repeat, or use
/// [`set_interval`](Self::set_interval)).
///
/// During a [lingering close](Self::linger_close) the deadline is the
/// close's: when it passes, the loop closes the channel without calling
/// `handle_timeout`, and setting a deadline can only bring it earlier (an
/// idle timeout pushed back on every read cannot keep a lingering channel
/// open past [`LINGER_TIME`]).
impl Dispatcher {
    /// Calls `handle_timeout` at `deadline` (`None`: never).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        if self.lingering.is_some() {
            return self.bring_deadline_forward(deadline);
        }
        self.deadline.due = deadline;
    }

    /// Calls `handle_timeout` `after` from now: an idle timeout is
    /// `ch.set_timeout(IDLE)` on every read.
    pub fn set_timeout(&mut self, after: Duration) {
        let due = Some(crate::deadline::after(after));
        if self.lingering.is_some() {
            return self.bring_deadline_forward(due);
        }
        self.deadline.due = due;
    }

    /// While lingering: the earlier of the close's deadline and `due`.
    fn bring_deadline_forward(&mut self, due: Option<Instant>) {
        if let (Some(new), Some(old)) = (due, self.deadline.due) {
            self.deadline.due = Some(new.min(old));
        }
    }

    /// Calls `handle_timeout` every `period` from now on, until the
    /// deadline is cleared ([`set_deadline(None)`](Self::set_deadline)). A
    /// late loop skips the missed periods rather than firing in a burst.
    /// A zero period fires at every pass of the loop, which then never
    /// blocks while it is armed (an idle callback, at full CPU); a period
    /// too large to add to the clock (`Duration::MAX`) means "never again".
    pub fn set_interval(&mut self, period: Duration) {
        self.deadline.period = Some(period);
        self.set_timeout(period);
    }

    /// When `handle_timeout` is due, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.due
    }

    /// What this channel is, in a few words, for the loop's trace:
    /// `listener 127.0.0.1:8080`, `connection from 127.0.0.1:40112`,
    /// `connection to 127.0.0.1:80`, `datagram socket 127.0.0.1:5353`,
    /// `file`, `socket`, `timer`.
    pub fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.addr.as_ref().map(DisplayAddr);
        match (&self.io, addr) {
            (Io::NoFd, _) => f.write_str("timer"),
            (Io::Closed, _) => f.write_str("closed"),
            (Io::File(_), _) => f.write_str("file"),
            (Io::Socket(_), Some(a)) if self.accepting() => write!(f, "listener {a}"),
            (Io::Socket(_), Some(a)) if self.connecting() => write!(f, "connection to {a}"),
            (Io::Socket(_), Some(a)) if !self.stream => write!(f, "datagram socket {a}"),
            (Io::Socket(_), Some(a)) if self.connected() => write!(f, "connection from {a}"),
            (Io::Socket(_), Some(a)) => write!(f, "socket {a}"),
            (Io::Socket(_), None) => f.write_str("socket"),
        }
    }
}

/// The fd, or `-1` once closed (as [`fileno`](Dispatcher::fileno) is
/// `None`).
impl AsRawFd for Dispatcher {
    fn as_raw_fd(&self) -> RawFd {
        self.fileno().unwrap_or(-1)
    }
}

/// The socket's (or file's) fd, for `std` and `nix` calls that take one.
///
/// # Panics
///
/// On a closed dispatcher (or a fd-less one, such as a timer's), which has
/// no fd to lend: check [`is_closed`](Dispatcher::is_closed) or use
/// [`fileno`](Dispatcher::fileno) where that can happen.
impl AsFd for Dispatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.io {
            Io::Socket(s) => s.as_fd(),
            Io::File(f) => f.as_fd(),
            Io::NoFd | Io::Closed => panic!("as_fd on a dispatcher without an fd: {self:?}"),
        }
    }
}

/// `read` is [`recv`](Dispatcher::recv): would-block is an error of kind
/// `WouldBlock`, `Ok(0)` is the end of the stream (and `handle_close`
/// follows, as for `recv`).
impl io::Read for Dispatcher {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
}

/// `write` is [`send`](Dispatcher::send), with `std`'s conventions:
/// nothing sent because the socket is full is an error of kind
/// `WouldBlock` (not `Ok(0)`, which `write_all` would take for a dead
/// writer), a gone peer is `BrokenPipe` (and `handle_close` follows).
/// `flush` does nothing: there is no buffer.
impl io::Write for Dispatcher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.send(buf)? {
            0 if self.close_pending => Err(io::ErrorKind::BrokenPipe.into()),
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(selectloop_msg_nosignal)]
fn send_to_nosignal(s: &Socket, data: &[u8], addr: &SockAddr) -> io::Result<usize> {
    s.send_to_with_flags(data, addr, libc::MSG_NOSIGNAL)
}

#[cfg(not(selectloop_msg_nosignal))]
fn send_to_nosignal(s: &Socket, data: &[u8], addr: &SockAddr) -> io::Result<usize> {
    // SO_NOSIGPIPE was set when the socket was prepared.
    s.send_to(data, addr)
}

/// Shows a socket address as asyncore's repr does: `IP:PORT` for inet
/// addresses (`[::1]:80` for IPv6), the path for Unix-domain ones.
///
/// ```
/// use selectloop::{DisplayAddr, SockAddr};
/// let addr = SockAddr::from("127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap());
/// assert_eq!(DisplayAddr(&addr).to_string(), "127.0.0.1:8080");
/// ```
pub struct DisplayAddr<'a>(pub &'a SockAddr);

impl fmt::Display for DisplayAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = self.0.as_socket() {
            write!(f, "{a}")
        } else if let Some(p) = self.0.as_pathname() {
            write!(f, "{}", p.display())
        } else if self.0.is_unnamed() {
            f.write_str("unnamed")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// Like asyncore's repr: `<Dispatcher listening 127.0.0.1:8080 fd=3>`,
/// `<Dispatcher connected 127.0.0.1:40112 fd=5>`, `<Dispatcher closed>`.
impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<Dispatcher")?;
        if self.lingering.is_some() {
            f.write_str(" lingering")?;
        } else if self.accepting() && self.addr.is_some() {
            f.write_str(" listening")?;
        } else if self.connected() {
            f.write_str(" connected")?;
        } else if self.connecting() {
            f.write_str(" connecting")?;
        }
        if let Some(addr) = &self.addr {
            write!(f, " {}", DisplayAddr(addr))?;
        }
        match self.fileno() {
            Some(fd) => write!(f, " fd={fd}>"),
            None => f.write_str(" closed>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn localhost() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    #[test]
    fn repr_shows_listening_and_address() {
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        d.bind(localhost()).unwrap();
        d.listen(5).unwrap();
        let port = d.addr().unwrap().as_socket().unwrap().port();
        let repr = format!("{d:?}");
        assert!(
            repr.starts_with("<Dispatcher listening 127.0.0.1:"),
            "{repr}"
        );
        assert!(repr.contains(&format!(":{port} fd=")), "{repr}");
        d.close();
        assert_eq!(
            format!("{d:?}"),
            format!("<Dispatcher 127.0.0.1:{port} closed>")
        );
    }

    #[test]
    fn bind_reports_the_real_port() {
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        d.bind(localhost()).unwrap();
        assert_ne!(d.addr().unwrap().as_socket().unwrap().port(), 0);
    }

    #[test]
    fn connect_without_a_socket_fails_and_leaves_no_connect_pending() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        let mut file = Dispatcher::file_dispatcher(&r).unwrap();
        assert!(file.connect(localhost()).is_err());
        assert!(!file.connecting() && file.connected());
        let mut closed = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        closed.close();
        assert!(closed.connect(localhost()).is_err());
        assert!(!closed.connecting());
    }

    #[test]
    fn from_accepted_is_connected_nonblocking_with_the_peer_address() {
        let mut server = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        server.bind(localhost()).unwrap();
        server.listen(1).unwrap();
        let to = server.addr().unwrap().as_socket().unwrap();
        let client = std::net::TcpStream::connect(to).unwrap();
        server.socket().unwrap().set_nonblocking(false).unwrap(); // wait for it
        let (sock, addr) = server.accept().unwrap().unwrap();
        let mut d = Dispatcher::from_accepted(sock, addr).unwrap();
        assert!(d.connected() && !d.connecting() && !d.accepting());
        let peer = d.addr().unwrap().as_socket().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let err = d.recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "non-blocking");
        assert!(format!("{d:?}").starts_with("<Dispatcher connected 127.0.0.1:"));
    }

    #[test]
    fn close_twice_is_harmless() {
        let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        d.close();
        d.close();
        assert!(d.is_closed());
        assert_eq!(d.fileno(), None);
    }

    #[test]
    fn disconnected_errors_match_asyncore() {
        for code in [libc::ECONNRESET, libc::EPIPE, libc::EBADF, libc::ENOTCONN] {
            assert!(is_disconnected(&io::Error::from_raw_os_error(code)));
        }
        assert!(!is_disconnected(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_disconnected(&io::Error::other("x")));
    }
}
