//! The HTTP/1.0 client of the seed articles (and of Python's asyncore
//! documentation), fetching every URL given on the command line at the same
//! time, on one loop.
//!
//! The Python original:
//!
//! ```python
//! class http_client(asyncore.dispatcher):
//!     def __init__(self, host, path):
//!         asyncore.dispatcher.__init__(self)
//!         self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
//!         self.connect((host, 80))
//!         self.buffer = bytes('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' %
//!                             (path, host), 'ascii')
//!     def handle_connect(self):
//!         pass
//!     def handle_close(self):
//!         self.close()
//!     def handle_read(self):
//!         print(self.recv(8192))
//!     def writable(self):
//!         return (len(self.buffer) > 0)
//!     def handle_write(self):
//!         sent = self.send(self.buffer)
//!         self.buffer = self.buffer[sent:]
//!
//! c = http_client('www.python.org', '/')
//! asyncore.loop()
//! ```
//!
//! What it teaches: `connect` returns at once (non-blocking), the loop calls
//! `handle_connect` when the connection is up; `writable()` is driven by the
//! request buffer, so the socket leaves the write set once the request is
//! sent; `recv` returning 0 means the server closed, which for HTTP/1.0 is
//! the end of the response. Several clients on one map run concurrently.
//!
//! Differences from the original:
//!
//! * Responses are written to stdout byte-exact (status line, headers,
//!   body) in the order of the arguments, each *as it arrives* once every
//!   response before it is out: the first URL's bytes go straight from the
//!   socket to stdout, the others wait in a buffer of at most
//!   [`BUFFER_LIMIT`] bytes each, and a connection whose buffer is full is
//!   not read (TCP flow control then holds its server back) until its turn
//!   comes. Memory does not grow with the size of a response. stdout is
//!   written with blocking writes: a slow reader of stdout slows the
//!   client down, which is what keeps it bounded.
//! * A URL that fails (malformed, unresolvable host, refused connection,
//!   empty reply, no progress for `--timeout` seconds, a connection reset
//!   before the server closed cleanly) gives a one-line `error: URL: why`
//!   on stderr, after the other fetches completed, and the exit status
//!   is not 0. A response that fails after some of it was written leaves
//!   that prefix on stdout; the error line says so.
//! * The timeout is a per-channel deadline ([`Dispatcher::set_timeout`]),
//!   pushed back on every read: "no progress", not "too slow overall". A
//!   connection held back because its buffer is full has no deadline
//!   until its turn comes.
//! * A reset (`ECONNRESET`) and a clean close (read of 0) are told apart
//!   by reading the socket directly (the dispatcher's `recv` reports both
//!   as 0, as asyncore does) and by `SO_ERROR` when the loop reports a
//!   hang-up without data.
//! * Host names are resolved with the blocking `ToSocketAddrs` before the
//!   loop starts (getaddrinfo(3) has no non-blocking form; asyncore's
//!   `connect((host, 80))` blocks in it just the same).
//!
//! Run: `cargo run --example http_client -- [--poll] [--timeout SECS] http://127.0.0.1:8000/ http://localhost:8000/x`

#[path = "../common/mod.rs"]
mod common;
mod url;

use clap::{CommandFactory, Parser};
use selectloop::sys::{self, PollFd, PollFlags};
use selectloop::{Context, Dispatcher, Domain, Handle, Handler, Map, Type};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;
use url::{parse_url, Url};

/// The most a response that is not yet at the head of the output keeps in
/// memory; its connection is not read while this much waits.
const BUFFER_LIMIT: usize = 256 * 1024;

/// How much one read takes.
const CHUNK: usize = 64 * 1024;

/// Fetches each URL with HTTP/1.0 GET, concurrently, and prints the raw responses.
#[derive(Parser, Debug)]
#[command(name = "http_client")]
struct Args {
    /// URLs of the form http://HOST[:PORT]/PATH (at least one)
    #[arg(value_name = "URL")]
    urls: Vec<String>,
    /// Give up on a URL after this many seconds without progress (connect,
    /// send or receive)
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    timeout: Duration,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// `--timeout`: a positive number of seconds (fractions allowed).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 1e9) {
        return Err(format!("{text} is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Where one URL's fetch stands.
enum Fetch {
    /// Connecting, sending or receiving; `held` is what arrived while an
    /// earlier response was still being written.
    Running { held: Vec<u8> },
    /// The server closed cleanly; `held` is what is not written yet.
    Done { held: Vec<u8> },
    /// It failed: why.
    Failed(String),
}

/// What the clients share: every fetch, in argument order, and which one
/// is being written to stdout.
struct Shared {
    fetches: Vec<Fetch>,
    /// The channel of each running fetch, to wake it when its turn comes.
    channels: Vec<Option<Handle<Dispatcher, HttpClient>>>,
    /// The fetch whose bytes go to stdout now: every one before it is out.
    head: usize,
    /// Bytes of each fetch already written to stdout.
    written: Vec<u64>,
    timeout: Duration,
}

impl Shared {
    /// Writes `data` of fetch `index` to stdout (it is the head).
    fn write_out(&mut self, index: usize, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut out = io::stdout().lock();
        if let Err(e) = out.write_all(data).and_then(|()| out.flush()) {
            common::fail(format_args!("cannot write to stdout: {e}"));
        }
        self.written[index] += data.len() as u64;
    }

    /// Moves the head past every finished fetch, writing what they held,
    /// and lets the new head's connection read again (with its deadline).
    fn advance(&mut self, cx: &mut Context<'_>) {
        while self.head < self.fetches.len() {
            let head = self.head;
            match &mut self.fetches[head] {
                Fetch::Running { held } => {
                    let held = std::mem::take(held);
                    self.write_out(head, &held);
                    if let Some(handle) = self.channels[head] {
                        if let Some(ch) = cx.channel_mut(handle) {
                            ch.set_timeout(self.timeout); // it may read again
                        }
                    }
                    return;
                }
                Fetch::Done { held } => {
                    let held = std::mem::take(held);
                    self.write_out(head, &held);
                }
                Fetch::Failed(_) => {}
            }
            self.head += 1;
        }
    }

    /// Fetch `index` failed: record why (and what of it is already out).
    fn fail(&mut self, index: usize, why: String, cx: &mut Context<'_>) {
        let why = match self.written[index] {
            0 => why,
            n => format!("{why} (after {n} bytes of the response were written)"),
        };
        self.fetches[index] = Fetch::Failed(why);
        self.channels[index] = None;
        if index == self.head {
            self.advance(cx);
        }
    }
}

/// One fetch: the article's `http_client`.
struct HttpClient {
    /// The request not yet sent (`self.buffer`).
    buffer: Vec<u8>,
    /// This URL's place in the arguments.
    index: usize,
    shared: Rc<RefCell<Shared>>,
}

impl HttpClient {
    /// The server closed cleanly (a read of 0): the response is complete.
    fn finished(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) {
        ch.close();
        let mut shared = self.shared.borrow_mut();
        let index = self.index;
        let held = match &mut shared.fetches[index] {
            Fetch::Running { held } => std::mem::take(held),
            _ => return,
        };
        if held.is_empty() && shared.written[index] == 0 {
            shared.fail(
                index,
                "the server closed the connection without a reply".into(),
                cx,
            );
            return;
        }
        shared.fetches[index] = Fetch::Done { held };
        shared.channels[index] = None;
        if index == shared.head {
            shared.advance(cx);
        }
    }

    fn failed(&mut self, ch: &mut Dispatcher, why: String, cx: &mut Context<'_>) {
        ch.close();
        let mut shared = self.shared.borrow_mut();
        if matches!(shared.fetches[self.index], Fetch::Running { .. }) {
            shared.fail(self.index, why, cx);
        }
    }
}

impl Handler for HttpClient {
    /// Not while this response waits with a full buffer for its turn.
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        match &self.shared.borrow().fetches[self.index] {
            Fetch::Running { held } => held.len() < BUFFER_LIMIT,
            _ => false,
        }
    }

    /// `return len(self.buffer) > 0`
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        !self.buffer.is_empty()
    }

    /// `pass`: nothing to do; the default would log a warning.
    fn handle_connect(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.set_timeout(self.shared.borrow().timeout);
        Ok(())
    }

    /// `sent = self.send(self.buffer); self.buffer = self.buffer[sent:]`
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let sent = ch.send(&self.buffer)?;
        self.buffer.drain(..sent);
        if sent > 0 {
            ch.set_timeout(self.shared.borrow().timeout);
        }
        Ok(())
    }

    /// `print(self.recv(8192))`: to stdout if this is the head, held
    /// otherwise. Read from the socket itself, so that a reset is told
    /// from a clean close.
    fn handle_read(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let mut data = [0u8; CHUNK];
        let read = match ch.socket() {
            Some(sock) => (&mut &*sock).read(&mut data),
            None => return Ok(()),
        };
        let n = match read {
            Ok(0) => {
                self.finished(ch, cx);
                return Ok(());
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => {
                self.failed(ch, format!("{e} before the response was complete"), cx);
                return Ok(());
            }
        };
        let timeout = {
            let mut shared = self.shared.borrow_mut();
            let is_head = shared.head == self.index;
            if is_head {
                shared.write_out(self.index, &data[..n]);
            } else if let Fetch::Running { held } = &mut shared.fetches[self.index] {
                held.extend_from_slice(&data[..n]);
            }
            let paused = match &shared.fetches[self.index] {
                Fetch::Running { held } => held.len() >= BUFFER_LIMIT,
                _ => false,
            };
            // Held back on purpose: no deadline until its turn comes.
            (!paused).then_some(shared.timeout)
        };
        match timeout {
            Some(t) => ch.set_timeout(t),
            None => ch.set_deadline(None),
        }
        Ok(())
    }

    /// The loop saw a hang-up with nothing to read: `SO_ERROR` tells a
    /// reset from a clean close.
    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        match ch.take_error() {
            Ok(Some(e)) | Err(e) => {
                self.failed(ch, format!("{e} before the response was complete"), cx)
            }
            Ok(None) => self.finished(ch, cx),
        }
        Ok(())
    }

    /// No progress for `--timeout` seconds, unless the server did send
    /// something the loop has not looked at yet: writing a long response
    /// to a slow stdout (blocking, in another fetch's `handle_read`) can
    /// hold the loop past this deadline, and the deadline then fires before
    /// the loop's next wait would have seen this socket readable.
    fn handle_timeout(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let timeout = self.shared.borrow().timeout;
        if input_waiting(ch) {
            ch.set_timeout(timeout);
            return Ok(());
        }
        let secs = timeout.as_secs_f64();
        self.failed(ch, format!("timed out: no progress for {secs} s"), cx);
        Ok(())
    }

    /// A refused connection (or any other failure) lands here.
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, cx: &mut Context<'_>) {
        self.failed(ch, err.to_string(), cx);
    }
}

/// Whether the socket has input (or an end of file, or an error) waiting
/// right now: a poll(2) that does not wait, on the crate's own wrapper.
fn input_waiting(ch: &Dispatcher) -> bool {
    let Some(fd) = ch.fileno() else {
        return false;
    };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(sys::poll(&mut fds, Some(Duration::ZERO)), Ok(n) if n > 0)
}

/// Resolves the URL's host and starts a non-blocking connect:
/// `create_socket` + `connect((host, port))`.
fn start_fetch(url: &Url) -> io::Result<Dispatcher> {
    let addr: SocketAddr = (url.host.as_str(), url.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("the host has no address"))?;
    let mut ch = Dispatcher::create_socket(Domain::for_address(addr), Type::STREAM)?;
    ch.connect(addr)?;
    Ok(ch)
}

fn main() {
    let args: Args = common::parse_args();
    if args.urls.is_empty() {
        // Checked by hand: clap's message for a missing argument spreads
        // over two lines.
        Args::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no URL given: at least one URL is required",
            )
            .exit()
    }
    let mut event_loop = args.backend.start();
    let count = args.urls.len();
    let shared = Rc::new(RefCell::new(Shared {
        fetches: Vec::with_capacity(count),
        channels: vec![None; count],
        head: 0,
        written: vec![0; count],
        timeout: args.timeout,
    }));

    let mut map = Map::new();
    for (index, text) in args.urls.iter().enumerate() {
        let started = parse_url(text).and_then(|url| {
            let ch = start_fetch(&url).map_err(|e| format!("{}: {e}", url.host))?;
            Ok((url, ch))
        });
        match started {
            Ok((url, mut ch)) => {
                shared
                    .borrow_mut()
                    .fetches
                    .push(Fetch::Running { held: Vec::new() });
                let request = format!(
                    "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n",
                    url.path,
                    url.host_header()
                );
                ch.set_timeout(args.timeout); // the connect counts too
                let handle = map.add(
                    ch,
                    HttpClient {
                        buffer: request.into_bytes(),
                        index,
                        shared: Rc::clone(&shared),
                    },
                );
                shared.borrow_mut().channels[index] = Some(handle);
            }
            Err(why) => shared.borrow_mut().fetches.push(Fetch::Failed(why)),
        }
    }
    // The leading URLs that failed at once are passed over now.
    {
        let mut shared = shared.borrow_mut();
        while matches!(shared.fetches.get(shared.head), Some(Fetch::Failed(_))) {
            shared.head += 1;
        }
    }

    // asyncore.loop(): returns when every client has closed.
    if let Err(e) = event_loop.run(&mut map) {
        common::fail(format_args!("event loop failed: {e}"));
    }

    let shared = shared.borrow();
    let mut failed = false;
    for (url, fetch) in args.urls.iter().zip(&shared.fetches) {
        if let Fetch::Failed(why) = fetch {
            eprintln!("error: {url}: {why}");
            failed = true;
        }
    }
    std::process::exit(i32::from(failed));
}
