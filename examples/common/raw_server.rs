//! What `select_server` and `poll_server` share: the listening socket, the
//! client list entries, and the output lines. Only the waiting differs
//! between the two, and that stays in each example.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;

/// `s = socket.socket(); s.bind(...); s.listen(5)`, non-blocking, plus the
/// signal self-pipe. Prints `listening on`; exits with a one-line error if
/// any of it fails. Signals come first: once `listening on` is out, a
/// SIGTERM must find its handler in place.
pub fn listen(bind: SocketAddr) -> (TcpListener, UnixStream) {
    let signals = super::signal_pipe()
        .unwrap_or_else(|e| super::fail(format_args!("cannot install signal handlers: {e}")));
    let listener = TcpListener::bind(bind)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .unwrap_or_else(|e| super::fail(format_args!("cannot listen on {bind}: {e}")));
    match listener.local_addr() {
        Ok(addr) => super::announce_listening(addr),
        Err(e) => super::fail(format_args!("cannot read the listening address: {e}")),
    }
    (listener, signals)
}

/// A connected client: Python's socket `c` plus the `addr` from `accept`,
/// remembered then (`r.getpeername()` raises for a peer that reset, which
/// kills the Python server).
pub struct Client {
    pub sock: TcpStream,
    pub addr: SocketAddr,
}

impl Client {
    /// `c, addr = s.accept()`, made non-blocking. `admit` may refuse the
    /// new connection with a reason (select_server: its fd does not fit an
    /// `fd_set`); a refused one is closed at once, with a warning.
    /// `None` if there was nothing to accept after all (the client already
    /// left, or the wakeup was spurious) or the client was refused.
    pub fn accept(
        listener: &TcpListener,
        admit: impl FnOnce(&TcpStream) -> Result<(), String>,
    ) -> Option<Client> {
        let (sock, addr) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => {
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
