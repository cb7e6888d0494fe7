//! The echo server of the seed articles: `EchoServer` accepts, each
//! connection gets an `EchoHandler` built on dispatcher_with_send.
//!
//! The Python original:
//!
//! ```python
//! class EchoHandler(asyncore.dispatcher_with_send):
//!     def handle_read(self):
//!         data = self.recv(8192)
//!         if data:
//!             self.send(data)
//!
//! class EchoServer(asyncore.dispatcher):
//!     def __init__(self, host, port):
//!         asyncore.dispatcher.__init__(self)
//!         self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
//!         self.set_reuse_addr()
//!         self.bind((host, port))
//!         self.listen(5)
//!
//!     def handle_accepted(self, sock, addr):
//!         print('Incoming connection from %s' % repr(addr))
//!         handler = EchoHandler(sock)
//!
//! server = EchoServer('localhost', 8080)
//! asyncore.loop()
//! ```
//!
//! Run: `cargo run --example echo_server -- --bind 127.0.0.1:8080 [--poll] [--trace]`

mod common;

use clap::Parser;
use selectloop::{
    Context, Dispatcher, DispatcherWithSend, DisplayAddr, Handler, Predicates, SockAddr, Socket,
};
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Echoes every byte back to the same connection.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Close a connection that sends nothing for this many seconds (0: never)
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    idle_timeout: u64,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// How much one `recv` may read. Python reads 8192 bytes; 64 KiB means
/// eight times fewer `recv`/`send` pairs (and loop passes) per MiB when a
/// client streams, and changes nothing for small messages.
const READ_SIZE: usize = 64 * 1024;

/// The read buffer, one for the whole server. The loop runs one handler at
/// a time on one thread, so every connection can borrow the same buffer in
/// turn: no 64 KiB per connection, and no fresh array to zero on each read.
type ReadBuffer = Rc<RefCell<Vec<u8>>>;

/// One client connection: asyncore's `EchoHandler(dispatcher_with_send)`.
struct EchoHandler {
    buf: ReadBuffer,
    /// Close the connection after this long without input.
    idle: Option<Duration>,
    /// The idle timeout passed once: the echo still queued is being
    /// delivered before the close.
    closing: bool,
}

impl Handler<DispatcherWithSend> for EchoHandler {
    /// readable()/writable() are DispatcherWithSend's own (room in the
    /// queue, output queued): the loop asks them only after this channel's
    /// events, so idle clients cost nothing per iteration.
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;

    fn handle_read(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if let Some(idle) = self.idle {
            // Any input pushes the idle deadline back: O(1), no allocation.
            ch.set_timeout(idle);
        }
        let mut data = self.buf.borrow_mut();
        loop {
            let n = ch.recv(&mut data)?;
            if n > 0 {
                // Queued if the client is slow to read. While the queue is
                // full, DispatcherWithSend's readable() is false: we stop
                // reading this client until it catches up, so its echo
                // cannot eat our memory.
                ch.send(&data[..n])?;
            }
            // A read that filled the buffer means more is probably waiting:
            // read it now rather than after another trip through poll(2).
            // A short read (any small message) costs no extra syscall.
            if n < data.len() || ch.is_full() {
                return Ok(());
            }
        }
    }

    /// Nothing arrived for the idle timeout: deliver what is queued, then
    /// close (a client that connects and says nothing is not held forever).
    /// The delivery gets one more idle period: a client that does not read
    /// its echo either is closed then, queue and all.
    fn handle_timeout(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if self.closing {
            log::info!("closing a connection that does not read its echo: {ch:?}");
            ch.close();
            return Ok(());
        }
        log::info!("closing an idle connection: {ch:?}");
        self.closing = true;
        ch.close_when_done();
        if let Some(idle) = self.idle {
            ch.set_timeout(idle);
        }
        Ok(())
    }

    // handle_close is not written out: DispatcherWithSend's default closes,
    // and if the client only shut down its write side (`nc -N`), first
    // delivers the echo still queued for it. asyncore's close-at-once lost
    // that tail.
}

/// The listening socket: asyncore's `EchoServer(dispatcher)`.
struct EchoServer {
    buf: ReadBuffer,
    idle: Option<Duration>,
}

impl Handler for EchoServer {
    /// A listener's wishes are its own: asked after its accepts only.
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;

    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        sock: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        log::info!("Incoming connection from {}", DisplayAddr(&addr));
        let mut conn = DispatcherWithSend::new(Dispatcher::from_accepted(sock, addr)?);
        if let Some(idle) = self.idle {
            conn.set_timeout(idle);
        }
        cx.add(
            conn,
            EchoHandler {
                buf: Rc::clone(&self.buf),
                idle: self.idle,
                closing: false,
            },
        );
        Ok(())
    }
}

fn main() {
    let args: Args = common::parse_args();
    let event_loop = args.backend.start();

    // The signal channel first, then EchoServer('localhost', 8080).
    let mut map = common::map_ending_on_signals();
    let buf = Rc::new(RefCell::new(vec![0; READ_SIZE]));
    let idle = (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    map.add(common::listen(args.bind, 128), EchoServer { buf, idle });
    common::run(&event_loop, &mut map); // asyncore.loop()
}
