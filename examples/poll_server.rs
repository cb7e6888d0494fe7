//! The classic poll(2) server of the Python tutorials, on the raw
//! syscall wrapper alone: no `Map`, no `Dispatcher`. The same server as
//! `select_server`, with an array of `pollfd`s instead of three fd sets.
//!
//! The Python original, what it gets wrong (and what this version does
//! instead: only the listener's fd means "accept", clients ask for
//! `POLLIN` only, `POLLHUP`/`POLLERR` lead to a read that says what
//! happened, non-blocking sockets, no `FD_SETSIZE` limit, no spin when out
//! of fds, a clean stop through a self-pipe), and a traced session: the
//! guide's chapter 2, `selectloop::guide::raw_servers` (`cargo doc --open`).
//!
//! Instead of `register`/`unregister`, the `pollfd` array is rebuilt before
//! each call from the list of clients: `clear()` and refill keeps the same
//! allocation, so the steady state allocates nothing.
//!
//! `--trace` prints, on stderr and in the loop's trace format (chapter 4,
//! `selectloop::guide::reading_the_trace`), each poll(2) call with its
//! `pollfd`s, what came back, and what each `accept` and `recv` did and
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
//! Run: `cargo run --example poll_server -- [--bind 127.0.0.1:1234] [--trace]`

mod common;

use clap::Parser;
use common::raw_server::{self, Client, Listener, Trace};
use selectloop::sys::{poll, PollFd, PollFlags};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Prints what clients send, on poll(2) alone.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:1234")]
    bind: SocketAddr,
    /// Print each poll(2) call, what it returned, and what each accept
    /// and recv did (stderr, in the loop's trace format)
    #[arg(long)]
    trace: bool,
}

/// The first two entries of the `pollfd` array; clients follow, in the
/// order of the client list.
const LISTENER: usize = 0;
const SIGNALS: usize = 1;
const FIRST_CLIENT: usize = 2;

fn main() {
    let args: Args = common::parse_args();
    common::init_logging(false);
    let trace = Trace::new(args.trace);
    let (mut listener, signals) = raw_server::listen(args.bind, &trace);
    if let Err(e) = serve(&mut listener, &signals, &trace) {
        common::fail(format_args!("poll failed: {e}"));
    }
}

/// The `while True:` loop. Returns `Ok` when a signal asks us to stop.
fn serve(listener: &mut Listener, signals: &impl AsRawFd, trace: &Trace) -> io::Result<()> {
    let mut clients: Vec<Client> = Vec::new();
    let mut fds: Vec<PollFd> = Vec::new();
    loop {
        // p.register(...) for everything we watch, as one array.
        fds.clear();
        // The listener asks for nothing during a short pause after accept
        // ran out of fds (it keeps its place in the array).
        let pause = listener.paused();
        let listen_for = if pause.is_some() {
            PollFlags::EMPTY
        } else {
            PollFlags::POLLIN
        };
        fds.push(PollFd::new(listener.sock.as_raw_fd(), listen_for));
        fds.push(PollFd::new(signals.as_raw_fd(), PollFlags::POLLIN));
        for c in &clients {
            fds.push(PollFd::new(c.sock.as_raw_fd(), PollFlags::POLLIN));
        }
        trace.poll_call(&fds, pause);
        // events = p.poll()
        let n = poll(&mut fds, pause)?;
        trace.poll_result(n, &fds);

        if !fds[SIGNALS].revents().is_empty() {
            let p = fds[SIGNALS];
            trace.fd(
                p.fd(),
                format_args!("{} -> stop: a signal arrived", p.revents()),
            );
            log::info!("signal received, shutting down");
            return Ok(());
        }
        // Clients first, while `fds` and `clients` still line up; a client
        // accepted now is watched from the next call on. POLLIN, POLLHUP,
        // POLLERR: read, and let the read tell. Python: p.unregister(fd);
        // del fdmap[fd] for those that left.
        let mut ready = fds[FIRST_CLIENT..].iter().map(|p| p.revents());
        clients.retain_mut(|c| {
            let revents = ready.next().unwrap_or(PollFlags::EMPTY);
            if revents.is_empty() {
                return true;
            }
            // The cause names every flag that came back.
            trace.fd(c.sock.as_raw_fd(), format_args!("{revents} -> recv"));
            c.read_chunk(trace)
        });
        let listener_revents = fds[LISTENER].revents();
        if listener_revents.contains(PollFlags::POLLIN) {
            trace.fd(
                listener.sock.as_raw_fd(),
                format_args!("{listener_revents} -> accept"),
            );
            // c, addr = s.accept(): poll(2) has no limit on fd numbers.
            clients.extend(listener.accept(|_| Ok(()), trace));
        }
    }
}
