//! What `select_server` and `poll_server` share: the listening socket, the
//! client list entries, and the output lines. Only the waiting differs
//! between the two, and that stays in each example.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long the listener sits out after `accept` ran out of fds.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The listening socket, and its back-off after `accept` ran out of fds.
pub struct Listener {
    pub sock: TcpListener,
    paused_until: Option<Instant>,
}

/// `s = socket.socket(); s.bind(...); s.listen(5)`, non-blocking, plus the
/// SIGINT/SIGTERM source (the crate's self-pipe). Prints `listening on`; exits with a one-line error if
/// any of it fails. Signals come first: once `listening on` is out, a
/// SIGTERM must find its handler in place.
pub fn listen(bind: SocketAddr) -> (Listener, super::StopSignals) {
    let signals = super::StopSignals::new();
    let sock = TcpListener::bind(bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .unwrap_or_else(|e| super::fail(format_args!("cannot listen on {bind}: {e}")));
    match sock.local_addr() {
        Ok(addr) => super::announce_listening(addr),
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
    ) -> Option<Client> {
        let (sock, addr) = match self.sock.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
                    self.paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                }
                log::warn!("accept failed: {e}");
                return None;
            }
        };
        let admitted =
            admit(&sock).and_then(|()| sock.set_nonblocking(true).map_err(|e| e.to_string()));
        if let Err(why) = admitted {
            log::warn!("refusing connection from {addr}: {why}");
            return None; // `sock` is dropped: the client sees the connection close
        }
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
    pub fn read_chunk(&mut self) -> bool {
        let mut data = [0u8; 1024];
        let alive = match self.sock.read(&mut data) {
            Ok(0) => false,
            Ok(n) => {
                super::say(String::from_utf8_lossy(&data[..n]));
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(_) => false,
        };
        if !alive {
            super::say(format_args!("{} disconnected", self.addr));
        }
        alive
    }
}
