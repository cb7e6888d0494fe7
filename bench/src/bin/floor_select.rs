//! The select(2) floor: the least an echo loop on select(2) can do, with no
//! abstraction. Two template fd sets (read, write) updated as connections
//! come and go and copied into the call each iteration, one `read` and one
//! `write` per readable connection, one shared `select` per iteration. A
//! connection whose echo did not fit waits in the write set and is not read
//! until it drains.
//!
//! Safe code only: the syscall is `selectloop::sys::select` (a thin
//! wrapper), the sockets are `std::net`.

use clap::Parser;
use selectloop::sys::{select, FdSet};
use selectloop_bench::{announce_listening, fail, READ_BUF};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// Minimal echo server on select(2).
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
        fail(format_args!("floor_select: {e}"));
    }
}

fn run(bind: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(bind)?;
    listener.set_nonblocking(true)?;
    announce_listening(listener.local_addr()?);
    let lfd = listener.as_raw_fd();
    let (mut want_r, mut want_w) = (FdSet::new(), FdSet::new());
    want_r.insert(lfd)?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let (mut r, mut w, mut x) = (want_r, want_w, FdSet::new());
        select(&mut r, &mut w, &mut x, None)?;
        let mut i = 0;
        while i < conns.len() {
            let fd = conns[i].stream.as_raw_fd();
            let ready = r.contains(fd) || w.contains(fd);
            if !ready || !serve(&mut conns[i], &mut want_r, &mut want_w, &mut buf) {
                i += 1;
                continue;
            }
            want_r.remove(fd);
            want_w.remove(fd);
            conns.swap_remove(i);
        }
        if r.contains(lfd) {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        // an fd that does not fit an fd_set is refused, not served
                        if want_r.insert(stream.as_raw_fd()).is_err() {
                            continue;
                        }
                        stream.set_nonblocking(true)?;
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
fn serve(conn: &mut Conn, want_r: &mut FdSet, want_w: &mut FdSet, buf: &mut [u8]) -> bool {
    let fd = conn.stream.as_raw_fd();
    if !conn.pending.is_empty() {
        match conn.stream.write(&conn.pending) {
            Ok(n) => {
                conn.pending.drain(..n);
                if conn.pending.is_empty() {
                    want_w.remove(fd);
                    // cannot fail: fd was in the set before
                    let _ = want_r.insert(fd);
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
            want_r.remove(fd);
            let _ = want_w.insert(fd);
        }
        false
    }
}
