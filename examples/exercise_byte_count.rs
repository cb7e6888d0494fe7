//! Exercise "count bytes per connection", reference solution: an echo
//! server that says, when a connection closes, how many bytes it read from
//! that client and how many reached the client's socket. The task and the
//! checker are in the guide's chapter `guide::exercises`; the checker is
//! `cargo test --test exercises byte_count` (point it at your own binary
//! with `EXERCISE_BYTE_COUNT=target/debug/examples/my_echo`).
//!
//! Output (stdout, one flushed line each): `listening on IP:PORT`, then for
//! each connection that closes `IP:PORT closed: N bytes in, M bytes out`.
//!
//! The lesson: the counters live in the handler (one per connection, no
//! global), "in" is the sum of what `recv` returned, and "out" is what was
//! handed to `send` minus what still waits in the queue at close
//! ([`DispatcherWithSend::pending`]): a queued byte has not left yet.
//!
//! Run: `cargo run --example exercise_byte_count -- [--bind 127.0.0.1:8080] [--poll] [--trace]`

mod common;

use clap::Parser;
use selectloop::{
    Context, Dispatcher, DispatcherType, DispatcherWithSend, DisplayAddr, Handler, SockAddr, Socket,
};
use std::io;
use std::net::SocketAddr;

/// An echo server that counts the bytes of each connection.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// One client, and its two counters.
struct CountingEcho {
    peer: String,
    bytes_in: u64,
    bytes_queued: u64,
    reported: bool,
}

impl CountingEcho {
    /// The closing line (once); `pending` bytes were queued but never sent.
    fn report(&mut self, pending: usize) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        let out = self.bytes_queued.saturating_sub(pending as u64);
        common::say(format_args!(
            "{} closed: {} bytes in, {out} bytes out",
            self.peer, self.bytes_in
        ));
    }
}

impl Handler<DispatcherWithSend> for CountingEcho {
    fn handle_read(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut data = [0u8; 16 * 1024];
        let n = ch.recv(&mut data)?;
        self.bytes_in += n as u64;
        if n > 0 {
            // readable() is false while the queue is full, so this send is
            // never refused.
            self.bytes_queued += ch.send(&data[..n])? as u64;
        }
        Ok(())
    }

    /// The default closes, or, if the client only shut down its write
    /// side, first delivers the echo still queued (then the channel closes
    /// itself and the report comes from `Drop`, with nothing pending).
    fn handle_close(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let pending = ch.pending();
        ch.default_handle_close()?;
        if ch.is_closed() {
            self.report(pending);
        }
        Ok(())
    }

    fn handle_error(&mut self, ch: &mut DispatcherWithSend, err: io::Error, _cx: &mut Context<'_>) {
        log::warn!("{}: {err}; closing", self.peer);
        self.report(ch.pending());
        ch.close();
    }
}

/// A connection that closed after delivering its queue reports here. (One
/// closed from outside mid-delivery, by the loop at the end of a graceful
/// shutdown's grace period, say, would count its undelivered queue as out:
/// the handler cannot see the queue once its channel is gone.)
impl Drop for CountingEcho {
    fn drop(&mut self) {
        self.report(0);
    }
}

/// The listening socket.
struct Server;

impl Handler for Server {
    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        sock: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let peer = DisplayAddr(&addr).to_string();
        log::info!("Incoming connection from {peer}");
        cx.add(
            DispatcherWithSend::new(Dispatcher::from_accepted(sock, addr)?),
            CountingEcho {
                peer,
                bytes_in: 0,
                bytes_queued: 0,
                reported: false,
            },
        );
        Ok(())
    }
}

fn main() {
    let args: Args = common::parse_args();
    let event_loop = args.backend.start();
    let mut map = common::map_ending_on_signals();
    map.add(common::listen(args.bind, 128), Server);
    common::run(&event_loop, &mut map);
}
