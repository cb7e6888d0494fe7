//! What `select_server` and `poll_server` share: the listening socket, the
//! client list entries, the output lines, and the `--trace` lines. Only the
//! waiting differs between the two, and that stays in each example.

use selectloop::sys::{FdSet, PollFd};
use std::fmt::Display;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// How long the listener sits out after `accept` ran out of fds.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The listening socket, and its back-off after `accept` ran out of fds.
pub struct Listener {
    pub sock: TcpListener,
    paused_until: Option<Instant>,
}

/// `s = socket.socket(); s.bind(...); s.listen(5)`, non-blocking, plus the
/// SIGINT/SIGTERM source (the crate's self-pipe). Prints `listening on`;
/// exits with a one-line error if any of it fails. Signals come first: once `listening on` is out, a
/// SIGTERM must find its handler in place.
pub fn listen(bind: SocketAddr, trace: &Trace) -> (Listener, super::StopSignals) {
    let signals = super::StopSignals::new();
    let sock = TcpListener::bind(bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .unwrap_or_else(|e| super::fail(format_args!("cannot listen on {bind}: {e}")));
    match sock.local_addr() {
        Ok(addr) => {
            super::announce_listening(addr);
            trace.opened(signals.as_raw_fd(), "signals SIGINT,SIGTERM");
            trace.opened(sock.as_raw_fd(), format_args!("listener {addr}"));
        }
        Err(e) => super::fail(format_args!("cannot read the listening address: {e}")),
    }
    let listener = Listener {
        sock,
        paused_until: None,
    };
    (listener, signals)
}

impl Listener {
    /// `None`: watch the listener in this wait (block until something
    /// happens). `Some(left)`: `accept` ran out of fds a moment ago, so
    /// leave the listener out of this wait, and wait at most `left`. The
    /// connection still queued keeps the listener readable: watching it at
    /// once would wake the loop again and again (a 100% CPU spin, the naive
    /// fix's failure) until an fd frees.
    pub fn paused(&mut self) -> Option<Duration> {
        let until = self.paused_until?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.paused_until = None;
            return None;
        }
        Some(left)
    }

    /// `c, addr = s.accept()`, made non-blocking. `admit` may refuse the
    /// new connection with a reason (select_server: its fd does not fit an
    /// `fd_set`); a refused one is closed at once, with a warning.
    /// `None` if there was nothing to accept after all (the client already
    /// left, or the wakeup was spurious), the client was refused, or we
    /// are out of fds (then the listener pauses, see [`Listener::paused`]).
    pub fn accept(
        &mut self,
        admit: impl FnOnce(&TcpStream) -> Result<(), String>,
        trace: &Trace,
    ) -> Option<Client> {
        let fd = self.sock.as_raw_fd();
        let (sock, addr) = match self.sock.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                trace.fd(fd, "accept would block (the client left already), ignored");
                return None;
            }
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                    trace.fd(fd, format_args!("accept failed: {e}; listener paused"));
                } else {
                    trace.fd(fd, format_args!("accept failed: {e}"));
                }
                log::warn!("accept failed: {e}");
                return None;
            }
        };
        let admitted =
            admit(&sock).and_then(|()| sock.set_nonblocking(true).map_err(|e| e.to_string()));
        if let Err(why) = admitted {
            trace.fd(
                sock.as_raw_fd(),
                format_args!("refused ({why}), closed at once"),
            );
            log::warn!("refusing connection from {addr}: {why}");
            return None; // `sock` is dropped: the client sees the connection close
        }
        trace.opened(sock.as_raw_fd(), format_args!("connection from {addr}"));
        super::say(format_args!("Got connection from {addr}"));
        Some(Client { sock, addr })
    }
}

/// A connected client: Python's socket `c` plus the `addr` from `accept`,
/// remembered then (`r.getpeername()` raises for a peer that reset, which
/// kills the Python server).
pub struct Client {
    pub sock: TcpStream,
    pub addr: SocketAddr,
}

impl Client {
    /// `data = r.recv(1024)`: prints the chunk. Returns `false` once the
    /// client is gone (end of stream, or an error such as a reset), after
    /// printing `IP:PORT disconnected`.
    /// With `--trace`, the trace says what `recv` returned, and when the
    /// client leaves the list.
    pub fn read_chunk(&mut self, trace: &Trace) -> bool {
        let fd = self.sock.as_raw_fd();
        let mut data = [0u8; 1024];
        let alive = match self.sock.read(&mut data) {
            Ok(0) => {
                trace.fd(fd, "recv(1024) returned 0: the peer closed");
                false
            }
            Ok(n) => {
                trace.fd(fd, format_args!("recv(1024) returned {n} bytes"));
                super::say(String::from_utf8_lossy(&data[..n]));
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                trace.fd(
                    fd,
                    "recv(1024) would block (nothing to read after all), ignored",
                );
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                trace.fd(fd, "recv(1024) interrupted by a signal, retried next time");
                true
            }
            Err(e) => {
                trace.fd(fd, format_args!("recv(1024) failed: {e}"));
                false
            }
        };
        if !alive {
            super::say(format_args!("{} disconnected", self.addr));
            trace.fd(fd, "closed, removed from the client list");
        }
        alive
    }
}

/// The `--trace` lines of the raw servers, in the loop's own trace format
/// (the guide's "Reading the trace" has the table), on stderr. Each wait is
/// numbered and stamped with the time since the server started.
pub struct Trace {
    on: bool,
    start: Instant,
    iteration: std::cell::Cell<u64>,
}

impl Trace {
    /// A trace that prints only if `on`.
    pub fn new(on: bool) -> Trace {
        Trace {
            on,
            start: Instant::now(),
            iteration: std::cell::Cell::new(0),
        }
    }

    /// Whether lines are printed.
    pub fn on(&self) -> bool {
        self.on
    }

    fn stamp(&self) -> String {
        format!("[+{:.6}s]", self.start.elapsed().as_secs_f64())
    }

    fn next_iteration(&self) -> u64 {
        self.iteration.set(self.iteration.get() + 1);
        self.iteration.get()
    }

    /// `fd F: opened: LABEL`: what the fd is, once.
    pub fn opened(&self, fd: RawFd, label: impl Display) {
        self.fd(fd, format_args!("opened: {label}"));
    }

    /// `fd F: TEXT`.
    pub fn fd(&self, fd: RawFd, text: impl Display) {
        if self.on {
            eprintln!("fd {fd}: {text}");
        }
    }

    /// The sets passed to select(2).
    pub fn select_call(&self, r: &FdSet, w: &FdSet, x: &FdSet, timeout: Option<Duration>) {
        if self.on {
            eprintln!(
                "{} iteration {}: select(readfds={r:?}, writefds={w:?}, exceptfds={x:?}, timeout={})",
                self.stamp(),
                self.next_iteration(),
                show_timeout(timeout)
            );
        }
    }

    /// What select(2) returned.
    pub fn select_result(&self, n: usize, r: &FdSet, w: &FdSet, x: &FdSet) {
        if !self.on {
            return;
        }
        let why = if n == 0 {
            " (timeout)"
        } else {
            " (an fd counts once per set it is in)"
        };
        eprintln!(
            "{} select -> {n} ready{why}: readfds={r:?}, writefds={w:?}, exceptfds={x:?}",
            self.stamp()
        );
    }

    /// The `pollfd` array passed to poll(2).
    pub fn poll_call(&self, fds: &[PollFd], timeout: Option<Duration>) {
        if !self.on {
            return;
        }
        eprintln!(
            "{} iteration {}: poll(nfds={}, timeout={})",
            self.stamp(),
            self.next_iteration(),
            fds.len(),
            show_timeout(timeout)
        );
        for p in fds {
            eprintln!("  pollfd fd={} events={}", p.fd(), p.events());
        }
    }

    /// What poll(2) returned: the entries with `revents`.
    pub fn poll_result(&self, n: usize, fds: &[PollFd]) {
        if !self.on {
            return;
        }
        if n == 0 {
            eprintln!("{} poll -> 0 ready (timeout)", self.stamp());
            return;
        }
        eprintln!("{} poll -> {n} ready", self.stamp());
        for p in fds.iter().filter(|p| !p.revents().is_empty()) {
            eprintln!("  pollfd fd={} revents={}", p.fd(), p.revents());
        }
    }
}

/// A timeout as the loop's trace shows it.
fn show_timeout(timeout: Option<Duration>) -> String {
    match timeout {
        None => "none (block)".to_string(),
        Some(t) => format!("{:.3}s", t.as_secs_f64()),
    }
}
