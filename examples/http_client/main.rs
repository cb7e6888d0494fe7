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
//! * Each response is collected, not printed as it comes: when every fetch
//!   is done, the raw responses (status line, headers, body, byte-exact) are
//!   written to stdout in the order of the arguments.
//! * A URL that fails (malformed, unresolvable host, refused connection,
//!   empty reply) gives a one-line `error: URL: why` on stderr; the other
//!   fetches go on, and the exit status is 1.
//! * Host names are resolved with the blocking `ToSocketAddrs` before the
//!   loop starts (getaddrinfo(3) has no non-blocking form; asyncore's
//!   `connect((host, 80))` blocks in it just the same).
//!
//! Run: `cargo run --example http_client -- [--poll] http://127.0.0.1:8000/ http://localhost:8000/x`

#[path = "../common/mod.rs"]
mod common;
mod url;

use clap::{CommandFactory, Parser};
use selectloop::{Context, Dispatcher, Domain, Handler, Map, Type};
use std::cell::RefCell;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use url::{parse_url, Url};

/// Fetches each URL with HTTP/1.0 GET, concurrently, and prints the raw responses.
#[derive(Parser, Debug)]
#[command(name = "http_client")]
struct Args {
    /// URLs of the form http://HOST[:PORT]/PATH (at least one)
    #[arg(value_name = "URL")]
    urls: Vec<String>,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// What happened to each URL, in argument order.
type Results = Rc<RefCell<Vec<Result<Vec<u8>, String>>>>;

/// One fetch: the article's `http_client`.
struct HttpClient {
    /// The request not yet sent (`self.buffer`).
    buffer: Vec<u8>,
    /// Where this URL's response goes.
    index: usize,
    results: Results,
}

impl Handler for HttpClient {
    /// `return len(self.buffer) > 0`
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        !self.buffer.is_empty()
    }

    /// `pass`: nothing to do; the default would log a warning.
    fn handle_connect(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// `sent = self.send(self.buffer); self.buffer = self.buffer[sent:]`
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let sent = ch.send(&self.buffer)?;
        self.buffer.drain(..sent);
        Ok(())
    }

    /// `print(self.recv(8192))`, collected instead of printed.
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut data = [0u8; 8192];
        let n = ch.recv(&mut data)?; // 0: the server closed; handle_close follows
        if let Ok(response) = &mut self.results.borrow_mut()[self.index] {
            response.extend_from_slice(&data[..n]);
        }
        Ok(())
    }

    /// `self.close()`: for HTTP/1.0 the server closing is the end of the
    /// response.
    fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        let mut results = self.results.borrow_mut();
        if matches!(&results[self.index], Ok(r) if r.is_empty()) {
            results[self.index] = Err("the server closed the connection without a reply".into());
        }
        Ok(())
    }

    /// A refused connection (or any other failure) lands here.
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, _cx: &mut Context<'_>) {
        ch.close();
        self.results.borrow_mut()[self.index] = Err(err.to_string());
    }
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
    let results: Results = Rc::new(RefCell::new(Vec::new()));

    let mut map = Map::new();
    for (index, text) in args.urls.iter().enumerate() {
        let started = parse_url(text).and_then(|url| {
            let ch = start_fetch(&url).map_err(|e| format!("{}: {e}", url.host))?;
            Ok((url, ch))
        });
        match started {
            Ok((url, ch)) => {
                results.borrow_mut().push(Ok(Vec::new()));
                let request = format!(
                    "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n",
                    url.path,
                    url.host_header()
                );
                map.add(
                    ch,
                    HttpClient {
                        buffer: request.into_bytes(),
                        index,
                        results: Rc::clone(&results),
                    },
                );
            }
            Err(why) => results.borrow_mut().push(Err(why)),
        }
    }

    // asyncore.loop(): returns when every client has closed.
    if let Err(e) = event_loop.run(&mut map) {
        common::fail(format_args!("event loop failed: {e}"));
    }

    let mut failed = false;
    let mut out = io::stdout().lock();
    for (url, result) in args.urls.iter().zip(results.borrow().iter()) {
        match result {
            Ok(response) => {
                if let Err(e) = out.write_all(response) {
                    common::fail(format_args!("cannot write to stdout: {e}"));
                }
            }
            Err(why) => {
                eprintln!("error: {url}: {why}");
                failed = true;
            }
        }
    }
    if let Err(e) = out.flush() {
        common::fail(format_args!("cannot write to stdout: {e}"));
    }
    std::process::exit(i32::from(failed));
}
