//! `cat` on the event loop: standard input to standard output through two
//! file dispatchers (asyncore's `file_dispatcher`), the way a program mixes
//! pipes, terminals and sockets in one loop.
//!
//! In Python it would read:
//!
//! ```python
//! class Input(asyncore.file_dispatcher):
//!     def writable(self): return False
//!     def readable(self): return len(shared.data) < LIMIT
//!     def handle_read(self):
//!         shared.data += self.recv(16384)
//!     def handle_close(self):
//!         shared.eof = True
//!         self.close()
//!
//! class Output(asyncore.file_dispatcher):
//!     def readable(self): return False
//!     def writable(self): return len(shared.data) > 0 or shared.eof
//!     def handle_write(self):
//!         sent = self.send(shared.data)
//!         shared.data = shared.data[sent:]
//!         if not shared.data and shared.eof:
//!             self.close()
//!
//! Input(sys.stdin); Output(sys.stdout)
//! asyncore.loop()
//! ```
//!
//! What it teaches:
//!
//! * [`Dispatcher::file_dispatcher`] wraps *any* fd: it duplicates it and
//!   makes it non-blocking, and `recv`/`send` become `read(2)`/`write(2)`.
//!   Non-blocking mode belongs to the open file description, which the
//!   duplicate shares with fd 0 and fd 1 (and with whoever else holds them,
//!   e.g. the shell): this program restores the original mode at exit.
//! * Two channels share one buffer (`Rc<RefCell<_>>`): bytes are copied as
//!   they arrive, not at end of input.
//! * Backpressure: the input stops being read (`readable()` is `false`)
//!   while [`LIMIT`] bytes wait for the output, so a slow reader on stdout
//!   cannot make this process grow.
//! * Regular files work too: select(2) and poll(2) always call a regular
//!   file ready, and `read` returning 0 is its end.
//! * On poll(2), a pipe whose writer is gone reports `POLLIN|POLLHUP` while
//!   data is still in it. asyncore's rule turns that `POLLHUP` into
//!   `handle_close` after one read, dropping the rest; this crate's loop
//!   keeps reading until `recv` returns 0, so the last bytes arrive too.
//!
//! * SIGINT and SIGTERM come through the crate's
//!   [`Signals`](selectloop::sources::Signals) source, as events of the same
//!   loop: the handler stops the loop, and the original blocking mode of
//!   stdin and stdout is put back before the process exits, as at a normal
//!   end (a plain `kill` would leave the shell's terminal non-blocking).
//!
//! Exit status: 0 once all of the input is written; 1 (with a one-line
//! error) if stdin cannot be read or stdout stops taking bytes; 130 after
//! SIGINT, 143 after SIGTERM (128 + the signal, as a shell reports a
//! process the signal killed).
//!
//! Run: `cargo run --example file_cat -- [--poll] < input > output`

mod common;

use clap::Parser;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use selectloop::sources::{SignalHandler, Signals};
use selectloop::{Context, Dispatcher, Handle, Handler, Loop, Map};
use std::cell::RefCell;
use std::io;
use std::os::fd::AsFd;
use std::rc::Rc;

/// Copies standard input to standard output through two file dispatchers.
#[derive(Parser, Debug)]
struct Args {
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// Stop reading stdin while this many bytes wait for stdout.
const LIMIT: usize = 256 * 1024;

/// How much one `recv` reads.
const CHUNK: usize = 16 * 1024;

/// What the two channels share.
#[derive(Default)]
struct Shared {
    /// Read from stdin, not yet written to stdout.
    data: Vec<u8>,
    /// stdin is at its end (everything is in `data`).
    eof: bool,
    /// Why the copy failed, if it did.
    failed: Option<String>,
    /// The signal that stopped the copy, if one did.
    stopped_by: Option<i32>,
}

/// Reads standard input.
struct Input {
    shared: Rc<RefCell<Shared>>,
}

impl Handler for Input {
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        let shared = self.shared.borrow();
        !shared.eof && shared.data.len() < LIMIT
    }

    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }

    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut chunk = [0u8; CHUNK];
        let n = ch.recv(&mut chunk)?;
        let mut shared = self.shared.borrow_mut();
        if n == 0 {
            shared.eof = true; // handle_close follows
        }
        shared.data.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// End of input: `recv` returned 0. (On poll(2) a pipe whose writer is
    /// gone says `POLLIN|POLLHUP` while data is still in it; the loop keeps
    /// calling `handle_read` until it is drained, so nothing is lost here.)
    fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        self.shared.borrow_mut().eof = true;
        ch.close();
        Ok(())
    }

    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, _cx: &mut Context<'_>) {
        let mut shared = self.shared.borrow_mut();
        shared.failed = Some(format!("cannot read stdin: {err}"));
        shared.eof = true;
        ch.close();
    }
}

/// Writes standard output.
struct Output {
    shared: Rc<RefCell<Shared>>,
    /// The input channel, to stop it if stdout goes away.
    input: Handle<Dispatcher, Input>,
    /// The signal channel, closed when the copy is over so the map empties.
    signals: Handle<Signals, Stop>,
}

/// SIGINT/SIGTERM: stop the loop; `main` restores the fds' mode and exits.
struct Stop {
    shared: Rc<RefCell<Shared>>,
}

impl SignalHandler for Stop {
    fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
        self.shared.borrow_mut().stopped_by = Some(signal);
        cx.exit();
        Ok(())
    }
}

impl Handler for Output {
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }

    /// Something to write, or the end to reach.
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        let shared = self.shared.borrow();
        !shared.data.is_empty() || shared.eof
    }

    fn handle_write(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let mut shared = self.shared.borrow_mut();
        let sent = ch.send(&shared.data)?;
        shared.data.drain(..sent);
        if shared.data.is_empty() && shared.eof {
            ch.close(); // all written: the map empties and the loop ends
            cx.close(self.signals);
        }
        Ok(())
    }

    /// stdout went away (its reader closed the pipe) before the end.
    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        let mut shared = self.shared.borrow_mut();
        if shared.failed.is_none() {
            shared.failed = Some("stdout was closed before all input was written".into());
        }
        cx.close(self.input);
        cx.close(self.signals);
        Ok(())
    }

    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, cx: &mut Context<'_>) {
        self.shared.borrow_mut().failed = Some(format!("cannot write stdout: {err}"));
        ch.close();
        cx.close(self.input);
        cx.close(self.signals);
    }
}

/// The status flags (`O_NONBLOCK` among them) of `fd`, to put back at exit.
fn status_flags(fd: impl AsFd) -> Option<OFlag> {
    fcntl(fd, FcntlArg::F_GETFL)
        .ok()
        .map(OFlag::from_bits_truncate)
}

/// Registers the two channels and runs the loop until the map is empty
/// (or a signal stops it).
fn copy(
    event_loop: &Loop,
    signals: Signals,
    stdin: &io::Stdin,
    stdout: &io::Stdout,
    shared: &Rc<RefCell<Shared>>,
) -> io::Result<()> {
    let mut map = Map::new();
    let signals = map.add(
        signals,
        Stop {
            shared: Rc::clone(shared),
        },
    );
    let input = map.add(
        Dispatcher::file_dispatcher(stdin)?,
        Input {
            shared: Rc::clone(shared),
        },
    );
    map.add(
        Dispatcher::file_dispatcher(stdout)?,
        Output {
            shared: Rc::clone(shared),
            input,
            signals,
        },
    );
    event_loop.clone().run(&mut map)?;
    Ok(())
}

fn main() {
    let args: Args = common::parse_args();
    let event_loop = args.backend.start();
    let (stdin, stdout) = (io::stdin(), io::stdout());
    let saved = (status_flags(&stdin), status_flags(&stdout));
    // Before the fds turn non-blocking: from then on a SIGINT/SIGTERM must
    // find its handler in place, or the mode would not be put back.
    let signals = Signals::new(&[libc::SIGINT, libc::SIGTERM])
        .unwrap_or_else(|e| common::fail(format_args!("cannot install signal handlers: {e}")));

    let shared = Rc::new(RefCell::new(Shared::default()));
    let result = copy(&event_loop, signals, &stdin, &stdout, &shared);

    // Put fd 0 and fd 1 back in the mode we found them in: the shell that
    // started us shares them.
    if let Some(flags) = saved.0 {
        let _ = fcntl(&stdin, FcntlArg::F_SETFL(flags));
    }
    if let Some(flags) = saved.1 {
        let _ = fcntl(&stdout, FcntlArg::F_SETFL(flags));
    }

    if let Some(signal) = shared.borrow().stopped_by {
        log::info!("signal {signal} received: stdin and stdout restored, exiting");
        std::process::exit(128 + signal);
    }
    if let Err(e) = result {
        common::fail(e);
    }
    let failed = shared.borrow_mut().failed.take();
    if let Some(why) = failed {
        common::fail(why);
    }
}
