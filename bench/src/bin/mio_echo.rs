//! The mio echo server: the de-facto Rust event loop (epoll on Linux,
//! edge-triggered), written the way mio's own `tcp_server` example is: on a
//! readable event read until `WouldBlock`, echo each chunk, and park what
//! did not fit until the socket is writable again.

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use selectloop_bench::{announce_listening, fail, READ_BUF};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// Echo server on mio.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
}

const LISTENER: Token = Token(0);

/// One client: its socket and the part of an echo still to write.
struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args.bind) {
        fail(format_args!("mio_echo: {e}"));
    }
}

fn run(bind: SocketAddr) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut listener = TcpListener::bind(bind)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    announce_listening(listener.local_addr()?);
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut buf = vec![0u8; READ_BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let token = Token(next);
                            next += 1;
                            poll.registry().register(
                                &mut stream,
                                token,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns.insert(
                                token,
                                Conn {
                                    stream,
                                    pending: Vec::new(),
                                },
                            );
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let done = match conns.get_mut(&event.token()) {
                Some(conn) => serve(conn, &mut buf),
                None => false,
            };
            if done {
                if let Some(mut conn) = conns.remove(&event.token()) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
            }
        }
    }
}

/// Drives one connection after an event; returns `true` when it is to be
/// closed. Edge-triggered: everything readable is read now.
fn serve(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        if !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => {
                    conn.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
            if !conn.pending.is_empty() {
                return false;
            }
        }
        let n = match conn.stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        };
        let written = match conn.stream.write(&buf[..n]) {
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => return true,
        };
        if written < n {
            conn.pending.extend_from_slice(&buf[written..n]);
        }
    }
}
