//! The port forwarder of the seed articles: a `forwarder` listens, and each
//! client it accepts gets a `receiver` (the client's connection) and a
//! `sender` (a new connection to the remote), which pass bytes both ways.
//!
//! The Python original (abridged; the article's comments removed):
//!
//! ```python
//! class forwarder(asyncore.dispatcher):
//!     def __init__(self, ip, port, remoteip, remoteport, backlog=5):
//!         asyncore.dispatcher.__init__(self)
//!         self.remoteip, self.remoteport = remoteip, remoteport
//!         self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
//!         self.set_reuse_addr()
//!         self.bind((ip, port))
//!         self.listen(backlog)
//!     def handle_accept(self):
//!         conn, addr = self.accept()
//!         self.log_info('Connected from %s:%s to %s:%s' % (...))
//!         sender(receiver(conn), self.remoteip, self.remoteport)
//!
//! class receiver(asyncore.dispatcher):
//!     def __init__(self, conn):
//!         asyncore.dispatcher.__init__(self, conn)
//!         self.from_remote_buffer = b''   # really: client -> remote
//!         self.to_remote_buffer = b''     # really: remote -> client
//!         self.sender = None
//!     def handle_connect(self): pass
//!     def handle_read(self):
//!         self.from_remote_buffer += self.recv(4096)
//!     def writable(self):
//!         return len(self.to_remote_buffer) > 0
//!     def handle_write(self):
//!         sent = self.send(self.to_remote_buffer)
//!         self.to_remote_buffer = self.to_remote_buffer[sent:]
//!     def handle_close(self):
//!         self.close()
//!         if self.sender:
//!             self.sender.close()
//!
//! class sender(asyncore.dispatcher):
//!     def __init__(self, receiver, remoteaddr, remoteport):
//!         asyncore.dispatcher.__init__(self)
//!         self.receiver = receiver
//!         receiver.sender = self
//!         self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
//!         self.connect((remoteaddr, remoteport))
//!     def handle_connect(self): pass
//!     def handle_read(self):
//!         self.receiver.to_remote_buffer += self.recv(4096)
//!     def writable(self):
//!         return len(self.receiver.from_remote_buffer) > 0
//!     def handle_write(self):
//!         sent = self.send(self.receiver.from_remote_buffer)
//!         self.receiver.from_remote_buffer = self.receiver.from_remote_buffer[sent:]
//!     def handle_close(self):
//!         self.close()
//!         self.receiver.close()
//! ```
//!
//! How it maps to Rust, and what changes:
//!
//! * **Shared buffers.** In Python the sender reaches into
//!   `self.receiver.from_remote_buffer`. Here each half is its own channel
//!   in the map, so the two buffers live in a [`Pipe`] that both handlers
//!   hold through an `Rc<RefCell<Pipe>>`. The buffers get names that say
//!   which way they flow (the article's names are backwards).
//! * **Reaching the other half.** Python keeps object references
//!   (`receiver.sender = self`); here each half keeps the other's [`Token`],
//!   and `self.sender.close()` becomes `cx.close(self.sender)`.
//! * **No lost bytes at close.** The original closes both halves at once
//!   when either side closes, dropping whatever was still buffered for the
//!   other side. Here a closing half marks itself closed in the `Pipe`; the
//!   other half delivers what is pending and then closes itself (or is
//!   closed at once if nothing is pending).
//! * **Bounded buffers.** The original reads as fast as one side sends, so
//!   a slow reader on the other side makes the buffer (and the process)
//!   grow without bound. Here a half stops reading (`readable()` is
//!   `false`) while the buffer towards the other side holds [`LIMIT`] bytes
//!   or more; TCP flow control then slows the sender down.
//! * **A refused remote** (nothing listening, unreachable) reaches the
//!   sender's `handle_error`: it logs the error and closes that client
//!   only. The forwarder keeps serving the others.
//!
//! Run: `cargo run --example port_forwarder -- -l 127.0.0.1 -p 8081 -r 127.0.0.1 -P 8080 [--poll] [--trace]`

mod common;

use clap::{CommandFactory, Parser};
use selectloop::{
    Context, Dispatcher, DisplayAddr, Domain, Handler, SockAddr, Socket, Token, Type,
};
use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

/// Forwards every connection to LOCAL_IP:LOCAL_PORT to REMOTE_IP:REMOTE_PORT.
#[derive(Parser, Debug)]
#[command(name = "port_forwarder")]
struct Args {
    /// Local IP address to bind to
    #[arg(short = 'l', long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Local port to bind to
    #[arg(short = 'p', long, default_value_t = 80)]
    local_port: u16,
    /// Remote IP address to forward to (required)
    #[arg(short = 'r', long)]
    remote_ip: Option<IpAddr>,
    /// Remote port to forward to
    #[arg(short = 'P', long, default_value_t = 80)]
    remote_port: u16,
    /// Length of the queue of connections not yet accepted (listen's backlog)
    #[arg(long, default_value_t = 5)]
    backlog: i32,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// A half stops reading while the buffer towards the other half holds this
/// many bytes or more.
const LIMIT: usize = 256 * 1024;

/// How much one `recv` reads (the original reads 4096 bytes at a time).
const CHUNK: usize = 16 * 1024;

/// What the two halves of one forwarded connection share.
#[derive(Default)]
struct Pipe {
    /// Read from the client, to be sent to the remote (the article's
    /// `receiver.from_remote_buffer`).
    client_to_remote: Vec<u8>,
    /// Read from the remote, to be sent to the client (the article's
    /// `receiver.to_remote_buffer`).
    remote_to_client: Vec<u8>,
    /// The client's connection is closed: no more bytes will come from it.
    client_closed: bool,
    /// The remote's connection is closed (or never opened).
    remote_closed: bool,
}

/// The listening socket: the article's `forwarder`.
struct Forwarder {
    remote: SocketAddr,
}

impl Handler for Forwarder {
    /// `conn, addr = self.accept(); sender(receiver(conn), ...)`
    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        conn: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        log::info!("Connected from {} to {}", DisplayAddr(&addr), self.remote);
        let pipe = Rc::new(RefCell::new(Pipe::default()));

        // sender.__init__: create_socket + connect (non-blocking: the
        // connection completes later, in the loop).
        let mut remote = Dispatcher::create_socket(Domain::for_address(self.remote), Type::STREAM)?;
        if let Err(e) = remote.connect(self.remote) {
            // Failed before even trying (e.g. no route): drop this client.
            log::warn!("cannot connect to {}: {e}", self.remote);
            return Ok(()); // `conn` is dropped, which closes it
        }

        // receiver(conn), then sender(receiver, ...). Each needs the other's
        // token: the receiver is added first, and learns the sender's token
        // right after (Python: `receiver.sender = self`).
        let receiver = cx.add(
            Dispatcher::from_socket(conn)?,
            Receiver {
                pipe: Rc::clone(&pipe),
                sender: None,
            },
        );
        let sender = cx.add(
            remote,
            Sender {
                pipe,
                receiver,
                remote: self.remote,
            },
        );
        if let Some(r) = cx.handler_mut::<Receiver>(receiver) {
            r.sender = Some(sender);
        }
        Ok(())
    }
}

/// The client's connection: the article's `receiver`.
struct Receiver {
    pipe: Rc<RefCell<Pipe>>,
    /// The other half (`None` only for the moment before it is added).
    sender: Option<Token>,
}

impl Handler for Receiver {
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        let pipe = self.pipe.borrow();
        !pipe.remote_closed && pipe.client_to_remote.len() < LIMIT
    }

    /// `len(self.to_remote_buffer) > 0`, or: the remote is gone and we must
    /// wake up to close ourselves.
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        let pipe = self.pipe.borrow();
        !pipe.remote_to_client.is_empty() || pipe.remote_closed
    }

    /// `self.from_remote_buffer += self.recv(4096)`
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut data = [0u8; CHUNK];
        let n = ch.recv(&mut data)?; // 0: the client closed; handle_close follows
        self.pipe
            .borrow_mut()
            .client_to_remote
            .extend_from_slice(&data[..n]);
        Ok(())
    }

    /// `sent = self.send(self.to_remote_buffer)`, then drop what was sent.
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut pipe = self.pipe.borrow_mut();
        let sent = ch.send(&pipe.remote_to_client)?;
        pipe.remote_to_client.drain(..sent);
        if pipe.remote_to_client.is_empty() && pipe.remote_closed {
            ch.close(); // everything the remote sent is delivered
        }
        Ok(())
    }

    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        let mut pipe = self.pipe.borrow_mut();
        pipe.client_closed = true;
        // Nobody is left to deliver the remote's bytes to.
        pipe.remote_to_client.clear();
        // `self.sender.close()`, unless it still has bytes to deliver: then
        // it closes itself once they are sent.
        if let Some(sender) = self.sender {
            if pipe.client_to_remote.is_empty() {
                cx.close(sender);
            }
        }
        Ok(())
    }

    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, cx: &mut Context<'_>) {
        log::warn!("client connection failed: {err}");
        let _ = self.handle_close(ch, cx);
    }
}

/// The connection to the remote: the article's `sender`.
struct Sender {
    pipe: Rc<RefCell<Pipe>>,
    receiver: Token,
    /// Where it connects to (for messages).
    remote: SocketAddr,
}

impl Handler for Sender {
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        let pipe = self.pipe.borrow();
        !pipe.client_closed && pipe.remote_to_client.len() < LIMIT
    }

    /// `len(self.receiver.from_remote_buffer) > 0`, or: the client is gone
    /// and we must wake up to close ourselves.
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        let pipe = self.pipe.borrow();
        !pipe.client_to_remote.is_empty() || pipe.client_closed
    }

    /// `def handle_connect(self): pass` (the default would log a warning).
    fn handle_connect(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// `self.receiver.to_remote_buffer += self.recv(4096)`
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut data = [0u8; CHUNK];
        let n = ch.recv(&mut data)?; // 0: the remote closed; handle_close follows
        self.pipe
            .borrow_mut()
            .remote_to_client
            .extend_from_slice(&data[..n]);
        Ok(())
    }

    /// `sent = self.send(self.receiver.from_remote_buffer)`, then drop what
    /// was sent.
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut pipe = self.pipe.borrow_mut();
        let sent = ch.send(&pipe.client_to_remote)?;
        pipe.client_to_remote.drain(..sent);
        if pipe.client_to_remote.is_empty() && pipe.client_closed {
            ch.close(); // everything the client sent is delivered
        }
        Ok(())
    }

    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        let mut pipe = self.pipe.borrow_mut();
        pipe.remote_closed = true;
        // Nobody is left to deliver the client's bytes to.
        pipe.client_to_remote.clear();
        // `self.receiver.close()`, once it has delivered what is pending.
        if pipe.remote_to_client.is_empty() {
            cx.close(self.receiver);
        }
        Ok(())
    }

    /// A refused or failed connection to the remote lands here (Python's
    /// default would print a traceback and close only the sender, leaving
    /// the client hanging). Close this client; the forwarder goes on.
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, cx: &mut Context<'_>) {
        log::warn!("connection to remote {} failed: {err}", self.remote);
        let _ = self.handle_close(ch, cx);
    }
}

fn main() {
    let args = Args::parse();
    let event_loop = args.backend.start();
    let local = SocketAddr::new(args.local_ip, args.local_port);
    // Checked by hand rather than by clap, whose message for a missing
    // argument spreads over two lines.
    let Some(remote_ip) = args.remote_ip else {
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the option -r/--remote-ip REMOTE_IP is required",
            )
            .exit()
    };
    let remote = SocketAddr::new(remote_ip, args.remote_port);

    // The signal channel first, then forwarder(...): create_socket,
    // set_reuse_addr, bind, listen.
    let mut map = common::map_ending_on_signals();
    map.add(common::listen(local, args.backlog), Forwarder { remote });
    common::run(&event_loop, &mut map); // asyncore.loop()
}
