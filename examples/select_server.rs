//! The classic select(2) server of the Python tutorials, on the raw
//! syscall wrapper alone: no `Map`, no `Dispatcher`, no handlers. This is
//! what asyncore does for you, written out by hand, and the first lesson
//! of the course.
//!
//! The Python original, what it gets wrong (and what this version does
//! instead: non-blocking sockets, the peer's address kept from `accept`,
//! fds above `FD_SETSIZE` refused, no spin when out of fds, a clean stop on
//! SIGINT/SIGTERM through a self-pipe), and a traced session read line by
//! line: the guide's chapter 2, `selectloop::guide::raw_servers`
//! (`cargo doc --open`).
//!
//! `--trace` prints, on stderr and in the loop's trace format (chapter 4,
//! `selectloop::guide::reading_the_trace`), each select(2) call with its
//! sets, what it returned, and what each `accept` and `recv` did and
//! returned. `trace_picture` draws it.
//!
//! # Output (stdout, one flushed line each)
//!
//! * `listening on IP:PORT` once, when the socket listens;
//! * `Got connection from IP:PORT` for each accepted client;
//! * for each chunk one `recv` (at most 1024 bytes) returns: the chunk as
//!   text (invalid UTF-8 becomes U+FFFD), then a newline — so a chunk that
//!   ends in `\n` is followed by an empty line;
//! * `IP:PORT disconnected` when a client closes or resets.
//!
//! Run: `cargo run --example select_server -- [--bind 127.0.0.1:1234] [--trace]`
//! and try it with `nc 127.0.0.1 1234` in other terminals.

mod common;

use clap::Parser;
use common::raw_server::{self, Client, Listener, Trace};
use selectloop::sys::{select, FdSet};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;

/// Prints what clients send, on select(2) alone.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:1234")]
    bind: SocketAddr,
    /// Print each select(2) call, what it returned, and what each accept
    /// and recv did (stderr, in the loop's trace format)
    #[arg(long)]
    trace: bool,
}

fn main() {
    let args: Args = common::parse_args();
    common::init_logging(false);
    // s = socket.socket(); s.bind(...); s.listen(5)
    let trace = Trace::new(args.trace);
    let (mut listener, signals) = raw_server::listen(args.bind, &trace);
    if let Err(e) = serve(&mut listener, &signals, &trace) {
        common::fail(format_args!("select failed: {e}"));
    }
}

/// The `while True:` loop. Returns `Ok` when a signal asks us to stop.
fn serve(listener: &mut Listener, signals: &impl AsRawFd, trace: &Trace) -> io::Result<()> {
    // inputs = [s]: here the clients only; the listener and the signal pipe
    // are added to the read set by hand each time.
    let mut inputs: Vec<Client> = Vec::new();
    loop {
        // select() overwrites its sets with the ready fds, so they are
        // filled again before every call (Python builds them from `inputs`).
        let mut rs = FdSet::new();
        let (mut ws, mut es) = (FdSet::new(), FdSet::new());
        // The listener sits out a short pause after accept ran out of fds.
        let pause = listener.paused();
        if pause.is_none() {
            rs.insert(listener.sock.as_raw_fd())?;
        }
        rs.insert(signals.as_raw_fd())?;
        for c in &inputs {
            // Cannot fail: a client whose fd does not fit was refused at
            // accept time.
            rs.insert(c.sock.as_raw_fd())?;
        }
        trace.select_call(&rs, &ws, &es, pause);
        // rs, ws, es = select.select(inputs, [], [])
        let n = select(&mut rs, &mut ws, &mut es, pause)?;
        trace.select_result(n, &rs, &ws, &es);

        if rs.contains(signals.as_raw_fd()) {
            trace.fd(signals.as_raw_fd(), "readable -> stop: a signal arrived");
            log::info!("signal received, shutting down");
            return Ok(());
        }
        // if r is s: a connection is waiting. The test Python never makes:
        // does the new fd fit an fd_set?
        if rs.contains(listener.sock.as_raw_fd()) {
            trace.fd(listener.sock.as_raw_fd(), "readable -> accept");
            let fits = |sock: &TcpStream| {
                FdSet::new()
                    .insert(sock.as_raw_fd())
                    .map_err(|e| e.to_string())
            };
            inputs.extend(listener.accept(fits, trace));
        }
        // for r in rs: read each ready client; drop those that left
        // (Python: inputs.remove(r); here dropping the client closes it).
        inputs.retain_mut(|c| {
            let fd = c.sock.as_raw_fd();
            if !rs.contains(fd) {
                return true;
            }
            trace.fd(fd, "readable -> recv");
            c.read_chunk(trace)
        });
    }
}
