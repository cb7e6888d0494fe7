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
//! * **One type for both halves.** `receiver` and `sender` are the same
//!   code with the directions swapped, so here they are one handler,
//!   [`Half`], made for the client's side ([`Half::receiver`]) or the
//!   remote's ([`Half::sender`]).
//! * **Shared buffers.** In Python the sender reaches into
//!   `self.receiver.from_remote_buffer`. Here each half is its own channel
//!   in the map, so the two buffers live in a [`Pipe`] that both handlers
//!   hold through an `Rc<RefCell<Pipe>>`, one [`Flow`] per direction.
//! * **Reaching the other half.** Python keeps object references
//!   (`receiver.sender = self`); here each half keeps the other's [`Handle`],
//!   and `self.sender.close()` becomes `cx.close(peer)`. The same handle
//!   lets a half hand what it reads straight to the other half's socket
//!   (`cx.channel_mut(peer)`) when nothing is queued there:
//!   no copy into the buffer, and no wait for the next loop pass.
//! * **No lost bytes at close.** The original closes both halves at once
//!   when either side closes, dropping whatever was still buffered for the
//!   other side, and the answer to a client that shuts down its write side
//!   after its request (`nc -N`, many HTTP/1.0 clients). Here an EOF is a
//!   half-close: it is passed on to the other side (`shutdown(SHUT_WR)`)
//!   once everything before it is delivered, the answer still flows back,
//!   and the pair closes when both directions are done. A broken
//!   connection (reset, hang-up) closes its half at once; the other half
//!   delivers what is pending for its side and then closes.
//! * **Bounded buffers.** The original reads as fast as one side sends, so
//!   a slow reader on the other side makes the buffer (and the process)
//!   grow without bound. Here a half reads only while nothing it read
//!   before still waits for the other side (`readable()` is `false`
//!   meanwhile): at most one read is ever queued per direction, the rest
//!   waits in the kernel's socket buffers, and TCP flow control slows the
//!   sender down. Bytes are copied once, from one socket to the other.
//! * **Accepting under load.** The original accepts one connection per
//!   loop pass, so bursts overflow the backlog (multi-second stalls and
//!   resets under redis-benchmark); here every waiting connection is
//!   accepted on each wake-up (at most [`ACCEPT_BATCH`]). And the remote
//!   socket is made before the accept: out of file descriptors, the
//!   forwarder pauses accepting and clients wait in the backlog until fds
//!   free up, instead of being accepted and dropped. The default backlog
//!   stays the original's 5 (the command-line contract): the kernel
//!   queues 6 connections, and a burst that outruns the accepts between
//!   two wake-ups still has SYNs dropped (sent again after 1 s) on a
//!   small, busy host, as socat and a bare accept loop do (the
//!   benchmark's churn pass counts them); `--backlog 128` absorbs it.
//! * **`TCP_NODELAY` on both sides**, as a proxy should (socat's
//!   `nodelay`): without it Nagle's algorithm put tens of milliseconds on
//!   the latency tail.
//! * **A refused remote** (nothing listening, unreachable) reaches the
//!   sender's `handle_error`: it logs the error and closes that client
//!   only. The forwarder keeps serving the others.
//!
//! Run: `cargo run --example port_forwarder -- -l 127.0.0.1 -p 8081 -r 127.0.0.1 -P 8080 [--poll] [--trace]`

mod common;

use clap::{CommandFactory, Parser};
use selectloop::{
    is_fd_shortage, Context, Dispatcher, DisplayAddr, Domain, Handle, Handler, SockAddr, Socket,
    Type, ACCEPT_BATCH,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

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
    /// Close a forwarded connection when neither side sent anything for
    /// this many seconds (0: never)
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    idle_timeout: u64,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// How much one `recv` may read (the original reads 4096 bytes at a time;
/// more per call means fewer system calls per MiB).
const READ_SIZE: usize = 64 * 1024;

/// The read buffer, one for the whole forwarder: the loop runs one handler
/// at a time, so every half can borrow it in turn.
type ReadBuffer = Rc<RefCell<Vec<u8>>>;

/// The two sides of a forwarded connection; a [`Flow`] is named by the
/// side it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// The client's connection, accepted by the forwarder (`receiver`).
    Client,
    /// The connection to the remote, made by the forwarder (`sender`).
    Remote,
}

/// One direction: bytes read from one side, on their way to the other.
#[derive(Default)]
struct Flow {
    /// Read, not yet written to the other side. A ring buffer: sent bytes
    /// leave from the front without shifting the rest.
    queue: VecDeque<u8>,
    /// The side it comes from sent its end (EOF): nothing more will come,
    /// though that side may still be reading.
    ended: bool,
    /// The side it comes from is closed entirely (hung up, reset, refused):
    /// nothing can be delivered back to it either.
    gone: bool,
}

/// What the two halves of one forwarded connection share: the article's
/// `from_remote_buffer` and `to_remote_buffer`, named by where they flow.
#[derive(Default)]
struct Pipe {
    client_to_remote: Flow,
    remote_to_client: Flow,
    /// When either side last sent something (the idle timeout counts from
    /// here).
    last_input: Option<Instant>,
}

impl Pipe {
    /// The two flows as `side` sees them: the one it reads into (on its way
    /// to the other side), and the one it writes out of.
    fn flows(&mut self, side: Side) -> (&mut Flow, &mut Flow) {
        match side {
            Side::Client => (&mut self.client_to_remote, &mut self.remote_to_client),
            Side::Remote => (&mut self.remote_to_client, &mut self.client_to_remote),
        }
    }
}

/// The listening socket: the article's `forwarder`.
struct Forwarder {
    remote: SocketAddr,
    buf: ReadBuffer,
    /// Close a pair that has been silent both ways this long.
    idle: Option<Duration>,
    /// A remote socket made for a connection that was not there after all
    /// (a spurious wake-up), kept for the next one.
    spare: Option<Dispatcher>,
}

impl Handler for Forwarder {
    /// `conn, addr = self.accept(); sender(receiver(conn), ...)`, for every
    /// connection waiting (up to [`ACCEPT_BATCH`] per wake-up: the original
    /// took one per loop pass, and bursts overflowed the backlog).
    ///
    /// The remote socket is made *before* the accept: out of fds, the
    /// forwarder pauses accepting and the client waits in the backlog
    /// until a connection closes, instead of being accepted and dropped
    /// because its remote socket could not be made.
    fn handle_accept(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        // Setting a connection up costs more than accepting it, and a burst
        // keeps arriving meanwhile: so the queue is drained (accept until
        // it would block) before each setup, and a small backlog does not
        // overflow while earlier connections are being set up.
        let mut waiting = VecDeque::new();
        let mut budget = ACCEPT_BATCH;
        loop {
            while budget > 0 && !ch.is_accept_paused() {
                match self.accept_one(ch)? {
                    Some(next) => waiting.push_back(next),
                    None => break,
                }
                budget -= 1;
            }
            let Some((conn, addr, remote)) = waiting.pop_front() else {
                return Ok(());
            };
            self.serve(conn, addr, remote, cx)?;
        }
    }
}

impl Forwarder {
    /// Accepts one waiting connection, with its remote socket made first:
    /// out of fds, accepting pauses and the client waits in the backlog.
    fn accept_one(
        &mut self,
        ch: &mut Dispatcher,
    ) -> io::Result<Option<(Socket, SockAddr, Dispatcher)>> {
        let remote = match self.spare.take() {
            Some(remote) => remote,
            None => match Dispatcher::create_socket(Domain::for_address(self.remote), Type::STREAM)
            {
                Ok(remote) => remote,
                Err(e) if is_fd_shortage(&e) => {
                    log::warn!("cannot make a remote socket ({e}); pausing accepts");
                    ch.pause_accepting();
                    return Ok(None);
                }
                Err(e) => return Err(e),
            },
        };
        // Out of fds here too pauses accepting (Dispatcher::accept).
        match ch.accept()? {
            Some((conn, addr)) => Ok(Some((conn, addr, remote))),
            None => {
                self.spare = Some(remote); // for the next connection
                Ok(None)
            }
        }
    }

    /// `sender(receiver(conn), remoteip, remoteport)`: the client's half
    /// and a connection to the remote.
    fn serve(
        &mut self,
        conn: Socket,
        addr: SockAddr,
        mut remote: Dispatcher,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        log::info!("Connected from {} to {}", DisplayAddr(&addr), self.remote);
        let pipe = Rc::new(RefCell::new(Pipe::default()));

        // sender.__init__: connect (non-blocking: the connection completes
        // later, in the loop). A proxy sends what it gets at once (socat's
        // `nodelay`): without it, Nagle's algorithm holds small replies for
        // an ACK delay.
        remote.set_nodelay(true)?;
        if let Err(e) = remote.connect(self.remote) {
            // Failed before even trying (e.g. no route): drop this client.
            log::warn!("cannot connect to {}: {e}", self.remote);
            return Ok(()); // `conn` is dropped, which closes it
        }

        // receiver(conn), then sender(receiver, ...). Each needs the other's
        // token: the receiver is added first, and learns the sender's token
        // right after (Python: `receiver.sender = self`).
        let mut client = Dispatcher::from_accepted(conn, addr)?;
        client.set_nodelay(true)?;
        if let Some(idle) = self.idle {
            // One deadline per pair, on the client's half: it looks at when
            // either side last sent, and re-arms or closes the pair.
            client.set_timeout(idle);
            pipe.borrow_mut().last_input = Some(Instant::now());
        }
        let receiver = cx.add(client, Half::receiver(&pipe, &self.buf, self.idle));
        let sender = cx.add(remote, Half::sender(&pipe, &self.buf, receiver));
        if let Some(r) = cx.handler_mut(receiver) {
            r.peer = Some(sender);
        }
        Ok(())
    }
}

/// One half of a forwarded connection: the article's `receiver` (the
/// client's side) or `sender` (the remote's side).
struct Half {
    side: Side,
    pipe: Rc<RefCell<Pipe>>,
    buf: ReadBuffer,
    /// The other half (`None` only for the moment before it is added).
    peer: Option<Handle<Dispatcher, Half>>,
    /// `recv` just returned 0: the `handle_close` that follows is this
    /// side's EOF, not a broken connection.
    eof: bool,
    /// This side's write half is shut down: the other side's EOF has been
    /// passed on.
    shut: bool,
    /// The pair's idle timeout (the client's half only).
    idle: Option<Duration>,
}

impl Half {
    /// `receiver(conn)`: the client's side.
    fn receiver(pipe: &Rc<RefCell<Pipe>>, buf: &ReadBuffer, idle: Option<Duration>) -> Half {
        Half {
            side: Side::Client,
            pipe: Rc::clone(pipe),
            buf: Rc::clone(buf),
            peer: None,
            eof: false,
            shut: false,
            idle,
        }
    }

    /// `sender(receiver, remoteaddr, remoteport)`: the remote's side.
    fn sender(
        pipe: &Rc<RefCell<Pipe>>,
        buf: &ReadBuffer,
        receiver: Handle<Dispatcher, Half>,
    ) -> Half {
        Half {
            side: Side::Remote,
            pipe: Rc::clone(pipe),
            buf: Rc::clone(buf),
            peer: Some(receiver),
            eof: false,
            shut: false,
            idle: None,
        }
    }
}

impl Handler for Half {
    /// Read while this side has not ended, the other side is there to take
    /// it, and nothing read before still waits for it.
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        let mut pipe = self.pipe.borrow_mut();
        let (outgoing, incoming) = pipe.flows(self.side);
        !outgoing.ended && !incoming.gone && outgoing.queue.is_empty()
    }

    /// `len(buffer) > 0`, or: the other side ended and its end must be
    /// passed on (or, if it is gone, this side closed).
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        let mut pipe = self.pipe.borrow_mut();
        let (_, incoming) = pipe.flows(self.side);
        !incoming.queue.is_empty() || (incoming.ended && !self.shut)
    }

    /// `def handle_connect(self): pass` (the default would log a warning).
    fn handle_connect(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// `buffer += self.recv(4096)`, but first offered straight to the other
    /// half's socket when nothing is queued for it.
    fn handle_read(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = self.buf.borrow_mut();
        let mut pipe = self.pipe.borrow_mut();
        if pipe.last_input.is_some() {
            pipe.last_input = Some(Instant::now());
        }
        let (outgoing, _) = pipe.flows(self.side);
        loop {
            let n = ch.recv(&mut buf)?;
            if n == 0 {
                self.eof = true; // this side's end: handle_close follows
                return Ok(());
            }
            let mut data = &buf[..n];
            if outgoing.queue.is_empty() {
                if let Some(peer) = self.peer.and_then(|t| cx.channel_mut(t)) {
                    if peer.connected() {
                        // An error is the other half's to find on its own
                        // next event; here it just means nothing was sent.
                        let sent = peer.send(data).unwrap_or(0);
                        data = &data[sent..];
                    }
                }
            }
            outgoing.queue.extend(data);
            // A read that filled the buffer means more is probably waiting:
            // take it now, if the other side took all of this one, rather
            // than after another trip through the loop. A short read costs
            // no extra syscall.
            if n < buf.len() || !outgoing.queue.is_empty() {
                return Ok(());
            }
        }
    }

    /// `sent = self.send(buffer)`, then drop what was sent. Once all the
    /// other side sent is delivered and it has ended, pass its end on
    /// (`shutdown(SHUT_WR)`), or close if it is gone.
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut pipe = self.pipe.borrow_mut();
        let (outgoing, incoming) = pipe.flows(self.side);
        if !incoming.queue.is_empty() {
            let sent = ch.send(incoming.queue.as_slices().0)?;
            incoming.queue.drain(..sent);
        }
        if incoming.queue.is_empty() && incoming.ended && !self.shut {
            if incoming.gone {
                ch.close(); // delivered all it sent; nothing can go back
                return Ok(());
            }
            ch.shutdown(Shutdown::Write)?;
            self.shut = true;
        }
        if self.shut && outgoing.ended {
            ch.close(); // both directions are done
        }
        Ok(())
    }

    /// Python: `self.close(); self.sender.close()` (or `receiver`). Here
    /// an EOF is only a half-close: this side will send nothing more, but
    /// may still be waiting for the other side's answer (a client that
    /// sends its request and shuts down its write side). So the end is
    /// passed on, and the connection closes once both directions are done.
    /// A broken connection (hang-up, reset) closes this side at once, and
    /// the other once it has delivered what is pending for it.
    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let mut pipe = self.pipe.borrow_mut();
        let (outgoing, incoming) = pipe.flows(self.side);
        outgoing.ended = true;
        if std::mem::take(&mut self.eof) {
            if self.shut {
                ch.close(); // our write side was done already
            }
            return Ok(());
        }
        ch.close();
        outgoing.gone = true;
        // Nobody is left to deliver the other side's bytes to.
        incoming.queue.clear();
        if let Some(peer) = self.peer {
            if outgoing.queue.is_empty() {
                cx.close(peer);
            }
        }
        Ok(())
    }

    /// The client's half: the pair's idle deadline passed. If either side
    /// sent something since it was set, wait the rest; else close both.
    fn handle_timeout(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let (Some(idle), Some(last)) = (self.idle, self.pipe.borrow().last_input) else {
            return Ok(());
        };
        let quiet = last.elapsed();
        if quiet < idle {
            ch.set_timeout(idle - quiet);
            return Ok(());
        }
        log::info!("closing a connection idle for {} s: {ch:?}", idle.as_secs());
        ch.close();
        if let Some(peer) = self.peer {
            cx.close(peer);
        }
        Ok(())
    }

    /// A failed connection: for the sender, typically a refused or
    /// unreachable remote (Python's default would print a traceback and
    /// close only the sender, leaving the client hanging). Close this
    /// client's pair; the forwarder goes on.
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, cx: &mut Context<'_>) {
        match self.side {
            Side::Client => log::warn!("client connection failed: {err}"),
            Side::Remote => match ch.addr() {
                Some(remote) => log::warn!("connection to {} failed: {err}", DisplayAddr(remote)),
                None => log::warn!("connection to the remote failed: {err}"),
            },
        }
        let _ = self.handle_close(ch, cx);
    }
}

fn main() {
    let args: Args = common::parse_args();
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
    let buf = Rc::new(RefCell::new(vec![0; READ_SIZE]));
    map.add(
        common::listen(local, args.backlog),
        Forwarder {
            remote,
            buf,
            idle: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
            spare: None,
        },
    );
    common::run(&event_loop, &mut map); // asyncore.loop()
}
