//! Exercise "add an idle timeout to the echo server", reference solution.
//! The task and the checker are in the guide's chapter `guide::exercises`;
//! the checker is `cargo test --test exercises idle_timeout` (point it at
//! your own binary with `EXERCISE_IDLE_TIMEOUT=target/debug/examples/my_echo`).
//!
//! A connection that sends nothing for `--idle-timeout SECS` (default 30)
//! gets the line `idle timeout, bye` (ending in `\r\n`) and is closed once
//! that line is sent; every byte received pushes its deadline back. Output
//! (stdout, one flushed line each): `listening on IP:PORT`, then
//! `IP:PORT idle, closed` for each connection closed that way.
//!
//! The lesson: a per-channel deadline ([`Dispatcher::set_timeout`]) set
//! when the connection is accepted and set again on every read, and
//! [`Handler::handle_timeout`] when it passes. The loop's wait is never
//! longer than the time to the nearest deadline, so no timer thread and no
//! polling are needed; with `--trace`, the firing is the line
//! `fd F: deadline passed -> handle_timeout`.
//!
//! Run: `cargo run --example exercise_idle_timeout -- [--bind 127.0.0.1:8080] [--idle-timeout 5] [--poll] [--trace]`

mod common;

use clap::Parser;
use selectloop::{Context, Dispatcher, DispatcherWithSend, DisplayAddr, Handler, SockAddr, Socket};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// An echo server that closes idle connections.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Close a connection that sends nothing for this many seconds
    #[arg(long, default_value = "30", value_parser = common::parse_seconds)]
    idle_timeout: Duration,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// One client.
struct IdleEcho {
    peer: String,
    idle: Duration,
}

impl Handler<DispatcherWithSend> for IdleEcho {
    fn handle_read(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut data = [0u8; 16 * 1024];
        let n = ch.recv(&mut data)?;
        if n > 0 {
            // The client is alive: its deadline moves on.
            ch.set_timeout(self.idle);
            ch.send(&data[..n])?;
        }
        Ok(())
    }

    fn handle_timeout(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        common::say(format_args!("{} idle, closed", self.peer));
        // The goodbye is queued; the channel closes once it is sent.
        ch.send(b"idle timeout, bye\r\n")?;
        ch.close_when_done();
        Ok(())
    }

    fn handle_close(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        ch.close();
        Ok(())
    }
}

/// The listening socket.
struct Server {
    idle: Duration,
}

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
        let mut ch = DispatcherWithSend::new(Dispatcher::from_accepted(sock, addr)?);
        // The clock starts at accept: a client that never sends is idle too.
        ch.set_timeout(self.idle);
        cx.add(
            ch,
            IdleEcho {
                peer,
                idle: self.idle,
            },
        );
        Ok(())
    }
}

fn main() {
    let args: Args = common::parse_args();
    let event_loop = args.backend.start();
    let mut map = common::map_ending_on_signals();
    map.add(
        common::listen(args.bind, 128),
        Server {
            idle: args.idle_timeout,
        },
    );
    common::run(&event_loop, &mut map);
}
