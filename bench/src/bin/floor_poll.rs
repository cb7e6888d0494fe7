//! The poll(2) floor: the least an echo loop on poll(2) can do, with no
//! abstraction. One `pollfd` array kept across iterations (slot 0 is the
//! listener), one `read` and one `write` per readable connection, one shared
//! `poll` per iteration. A connection whose echo did not fit in the socket
//! buffer waits for `POLLOUT` and is not read until it drains.
//!
//! Safe code only: the syscall is `selectloop::sys::poll` (a thin wrapper),
//! the sockets are `std::net`.

use clap::Parser;
use selectloop::sys::{poll, PollFd, PollFlags};
use selectloop_bench::{announce_listening, fail, READ_BUF};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// Minimal echo server on poll(2).
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
}

/// One client: its socket and the part of an echo still to write.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args.bind) {
        fail(format_args!("floor_poll: {e}"));
    }
}

fn run(bind: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    announce_listening(listener.local_addr()?);
    // fds[0] is the listener; fds[i + 1] belongs to conns[i].
    let mut fds = vec![PollFd::new(listener.as_raw_fd(), PollFlags::POLLIN)];
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        poll(&mut fds, None)?;
        let mut i = 0;
        while i < conns.len() {
            let revents = fds[i + 1].revents();
            if revents.is_empty() || !serve(&mut conns[i], &mut fds[i + 1], &mut buf) {
                i += 1;
                continue;
            }
            // closed: swap the last connection into this slot
            conns.swap_remove(i);
            fds.swap_remove(i + 1);
        }
        if !fds[0].revents().is_empty() {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(true)?;
                        fds.push(PollFd::new(stream.as_raw_fd(), PollFlags::POLLIN));
                        conns.push(Conn {
                            stream,
                            pending: Vec::new(),
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// Handles one ready connection; returns `true` when it is to be closed.
fn serve(conn: &mut Conn, pfd: &mut PollFd, buf: &mut [u8]) -> bool {
    if !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(n) => {
                conn.pending.drain(..n);
                if conn.pending.is_empty() {
                    pfd.set_events(PollFlags::POLLIN);
                }
                false
            }
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    } else {
        let n = match conn.stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) => return e.kind() != io::ErrorKind::WouldBlock,
        };
        let written = match conn.stream.write(&buf[..n]) {
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => return true,
        };
        if written < n {
            conn.pending.extend_from_slice(&buf[written..n]);
            pfd.set_events(PollFlags::POLLOUT);
        }
        false
    }
}
