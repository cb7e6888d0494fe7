//! Thread-per-connection echo server on blocking `std::net`: the seeds'
//! `ThreadingMixIn` comparison. Each accepted connection gets its own thread
//! that reads and writes back until the peer closes.

use clap::Parser;
use selectloop_bench::{announce_listening, fail, READ_BUF};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

/// Thread-per-connection echo server.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args.bind) {
        fail(format_args!("thread_echo: {e}"));
    }
}

fn run(bind: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(bind)?;
    announce_listening(listener.local_addr()?);
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let spawned = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || echo(stream));
        if let Err(e) = spawned {
            eprintln!("thread_echo: cannot spawn a thread: {e}");
        }
    }
}

/// Echoes one connection until the peer closes or fails.
fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}
