//! Child processes as channels of the loop: [`ChildProcess::spawn`] +
//! [`ChildHandler`] (Twisted's `spawnProcess` and `ProcessProtocol`).
//!
//! [`ChildProcess::spawn`] runs a `std::process::Command` with its stdin,
//! stdout and stderr piped, and puts four channels in the map:
//!
//! * **stdout** and **stderr**: file dispatchers whose data goes to
//!   [`ChildHandler::handle_output`] as it arrives, then
//!   [`ChildHandler::handle_eof`] when the child (and whoever inherited the
//!   pipe) closes it;
//! * **stdin**: a [`DispatcherWithSend`] over the pipe. Write to the child
//!   with `cx.channel_mut(child.stdin())`: `send`
//!   queues what the pipe does not take at once, `close_when_done` sends
//!   EOF after the last byte. It closes (dropping its queue) if the child
//!   closes its end, and when the child has exited;
//! * **exit**: a [`Signals`] channel for `SIGCHLD`. On each `SIGCHLD` it
//!   asks for *this* child's status only (`waitpid(pid, WNOHANG)`, through
//!   `std::process::Child::try_wait`), never `waitpid(-1)`: the status of a
//!   child someone else spawned is never taken. Once the child has exited
//!   and both output pipes are at EOF, [`ChildHandler::handle_exit`] gets
//!   the status, so it always comes after the last output. The child is
//!   reaped then: no zombie is left.
//!
//! The `SIGCHLD` handler is registered before the child is started, so an
//! exit cannot be missed, and the status is checked once right after the
//! spawn too.
//!
//! One handler serves the four channels, so it lives in an
//! `Rc<RefCell<_>>` shared by them: [`Context::handler_mut`] does not reach
//! it; keep what you need to reach from outside in your own `Rc`.
//!
//! Through a graceful shutdown ([`Context::shutdown`]) the four channels
//! stay: stdin delivers what is queued and then closes, the output and the
//! exit keep coming until the child exits, within the grace period.
//!
//! If the exit channel leaves the map before the child exited (the map is
//! dropped, or you close it), the child is not waited for: it keeps
//! running, and once it exits it stays a zombie until this process exits.
//! Kill and wait for it yourself in that case (its pid is
//! [`ChildProcess::id`]).
//!
//! ```
//! use selectloop::sources::{ChildHandler, ChildProcess, ChildStream};
//! use selectloop::{Context, Loop, Map};
//! use std::io;
//! use std::process::{Command, ExitStatus};
//!
//! #[derive(Default)]
//! struct Relay {
//!     stdout: Vec<u8>,
//!     status: Option<ExitStatus>,
//! }
//!
//! impl ChildHandler for Relay {
//!     fn handle_output(&mut self, stream: ChildStream, data: &[u8], _cx: &mut Context<'_>) -> io::Result<()> {
//!         if stream == ChildStream::Stdout {
//!             self.stdout.extend_from_slice(data);
//!         }
//!         Ok(())
//!     }
//!     fn handle_exit(&mut self, status: ExitStatus, _cx: &mut Context<'_>) -> io::Result<()> {
//!         self.status = Some(status);
//!         Ok(())
//!     }
//! }
//!
//! let relay = std::rc::Rc::new(std::cell::RefCell::new(Relay::default()));
//! let mut map = Map::new();
//! ChildProcess::spawn(Command::new("sh").args(["-c", "echo hello; exit 3"]), SharedRelay(relay.clone()), &mut map)?;
//! Loop::new().timeout(None).run(&mut map)?; // the four channels close, the map empties
//! assert_eq!(relay.borrow().stdout, b"hello\n");
//! assert_eq!(relay.borrow().status.and_then(|s| s.code()), Some(3));
//!
//! // A handler reached from outside the loop, through an Rc of your own:
//! struct SharedRelay(std::rc::Rc<std::cell::RefCell<Relay>>);
//! impl ChildHandler for SharedRelay {
//!     fn handle_output(&mut self, stream: ChildStream, data: &[u8], cx: &mut Context<'_>) -> io::Result<()> {
//!         self.0.borrow_mut().handle_output(stream, data, cx)
//!     }
//!     fn handle_exit(&mut self, status: ExitStatus, cx: &mut Context<'_>) -> io::Result<()> {
//!         self.0.borrow_mut().handle_exit(status, cx)
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use super::signals::{LocalRaiser, SignalHandler, Signals};
use super::AddChannel;
use crate::dispatcher::Dispatcher;
use crate::dispatcher_with_send::DispatcherWithSend;
use crate::handler::Handler;
use crate::map::{Handle, Token};
use crate::Context;
use std::cell::{Cell, RefCell};
use std::io;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::rc::Rc;

/// Which output pipe of the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChildStream {
    /// The child's standard output.
    Stdout,
    /// The child's standard error.
    Stderr,
}

/// What the channels of a [`ChildProcess`] call.
#[allow(unused_variables)]
pub trait ChildHandler: 'static {
    /// `data` arrived on the child's stdout or stderr (as much as one read
    /// took: lines may be split).
    fn handle_output(
        &mut self,
        stream: ChildStream,
        data: &[u8],
        cx: &mut Context<'_>,
    ) -> io::Result<()>;

    /// The pipe reached its end (no more `handle_output` for `stream`).
    /// Default: nothing.
    fn handle_eof(&mut self, stream: ChildStream, cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// The child exited (or was killed: see
    /// `std::os::unix::process::ExitStatusExt::signal`) and its output is
    /// all delivered. It has been reaped.
    fn handle_exit(&mut self, status: ExitStatus, cx: &mut Context<'_>) -> io::Result<()>;

    /// A handler method failed, or reading a pipe or the status did.
    /// Default: log it at error level. The channel concerned is closed
    /// whatever this does; for an output pipe, that counts as its end.
    fn handle_error(&mut self, err: io::Error, cx: &mut Context<'_>) {
        log::error!("child process: {err}");
    }
}

/// A spawned child: its pid and the handles of its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildProcess {
    pid: u32,
    stdin: Handle<DispatcherWithSend, ChildStdin>,
    stdout: Token,
    stderr: Token,
    exit: Token,
}

impl ChildProcess {
    /// Spawns `command` with stdin, stdout and stderr piped (whatever it
    /// said about them before) and registers its channels (in a [`Map`]
    /// or, from a handler, through the [`Context`]); `handler` gets the
    /// events. On an error after the spawn, the child is killed and reaped
    /// before the error is returned.
    ///
    /// [`Map`]: crate::Map
    pub fn spawn<H: ChildHandler>(
        command: &mut Command,
        handler: H,
        map: &mut impl AddChannel,
    ) -> io::Result<ChildProcess> {
        // SIGCHLD first: a child that exits at once must not be missed.
        let sigchld = Signals::new(&[libc::SIGCHLD])?;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pipes = (|| {
            let stdin = child.stdin.take().ok_or_else(missing_pipe)?;
            let stdout = child.stdout.take().ok_or_else(missing_pipe)?;
            let stderr = child.stderr.take().ok_or_else(missing_pipe)?;
            Ok::<_, io::Error>((
                Dispatcher::file_dispatcher(&stdin)?,
                Dispatcher::file_dispatcher(&stdout)?,
                Dispatcher::file_dispatcher(&stderr)?,
            ))
        })();
        let (stdin, stdout, stderr) = match pipes {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let pid = child.id();
        let progress = Rc::new(Progress {
            open_outputs: Cell::new(2),
            exit_delivered: Cell::new(false),
        });
        let shared = Rc::new(RefCell::new(Shared {
            handler,
            progress: Rc::clone(&progress),
            status: None,
            watcher: None,
        }));
        let relay = |stream| OutputRelay {
            stream,
            shared: Rc::clone(&shared),
            progress: Rc::clone(&progress),
            look_again: sigchld.local_raiser(libc::SIGCHLD),
            finished: false,
        };
        let stdout = map.add_channel(stdout, relay(ChildStream::Stdout)).token();
        let stderr = map.add_channel(stderr, relay(ChildStream::Stderr)).token();
        let stdin = map.add_channel(DispatcherWithSend::new(stdin), ChildStdin { pid });
        sigchld.raise_locally(libc::SIGCHLD); // look once right away
        let exit = map
            .add_channel(
                sigchld,
                ExitWatcher {
                    child: Some(child),
                    stdin: stdin.token(),
                    shared: Rc::clone(&shared),
                },
            )
            .token();
        shared.borrow_mut().watcher = Some(exit);
        log::debug!("child {pid} spawned: {command:?}");
        Ok(ChildProcess {
            pid,
            stdin,
            stdout,
            stderr,
            exit,
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// The stdin channel, a [`DispatcherWithSend`]: reach it with
    /// `cx.channel_mut(child.stdin())` (or `map.channel_mut`) to `send` and
    /// `close_when_done`.
    pub fn stdin(&self) -> Handle<DispatcherWithSend, ChildStdin> {
        self.stdin
    }

    /// The stdout channel (a file dispatcher).
    pub fn stdout(&self) -> Token {
        self.stdout
    }

    /// The stderr channel (a file dispatcher).
    pub fn stderr(&self) -> Token {
        self.stderr
    }

    /// The exit channel (a [`Signals`] for `SIGCHLD`): in the map until the
    /// child is reaped and its exit delivered (after its output, or after
    /// its output channels were closed).
    pub fn exit(&self) -> Token {
        self.exit
    }
}

fn missing_pipe() -> io::Error {
    io::Error::other("a piped stdio handle of the child is missing")
}

/// What the four channels of one child share.
struct Shared<H> {
    handler: H,
    progress: Rc<Progress>,
    /// The reaped child's status, once known.
    status: Option<ExitStatus>,
    /// The exit channel, while in the map: it leaves once the exit is
    /// delivered.
    watcher: Option<Token>,
}

/// How far the child's channels are, outside the `RefCell` of [`Shared`]:
/// an output channel closed from a handler (which may hold that cell) is
/// counted when it is dropped.
struct Progress {
    /// Output pipes not at their end yet (nor closed).
    open_outputs: Cell<usize>,
    exit_delivered: Cell<bool>,
}

impl<H: ChildHandler> Shared<H> {
    /// Calls `handle_exit` once the child is reaped and its output is all
    /// delivered (or its channels closed); then the exit channel leaves.
    fn deliver_exit_when_done(&mut self, cx: &mut Context<'_>) {
        let Some(status) = self.status else { return };
        if self.progress.open_outputs.get() > 0 || self.progress.exit_delivered.get() {
            return;
        }
        self.progress.exit_delivered.set(true);
        if let Some(watcher) = self.watcher.take() {
            cx.close(watcher);
        }
        log::trace!("child: {status} -> handle_exit");
        if let Err(e) = self.handler.handle_exit(status, cx) {
            self.handler.handle_error(e, cx);
        }
    }
}

/// The handler of the stdout and stderr channels.
struct OutputRelay<H> {
    stream: ChildStream,
    shared: Rc<RefCell<Shared<H>>>,
    progress: Rc<Progress>,
    /// Makes the exit channel look again (a `SIGCHLD` raised in-process):
    /// how a relay closed from outside gets a waiting exit delivered.
    look_again: Option<LocalRaiser>,
    finished: bool,
}

impl<H> OutputRelay<H> {
    /// Counts this pipe as done, once. Returns whether it was open.
    fn count_done(&mut self) -> bool {
        if std::mem::replace(&mut self.finished, true) {
            return false;
        }
        let open = &self.progress.open_outputs;
        open.set(open.get().saturating_sub(1));
        true
    }
}

/// A relay closed from outside (`cx.close(child.stderr())`) is dropped
/// without its `finish`: it is counted here, and the exit channel is told
/// to look again, so `handle_exit` still comes.
impl<H> Drop for OutputRelay<H> {
    fn drop(&mut self) {
        if self.count_done() && !self.progress.exit_delivered.get() {
            if let Some(look_again) = &self.look_again {
                look_again.raise();
            }
        }
    }
}

impl<H: ChildHandler> OutputRelay<H> {
    /// The pipe is done (EOF or error): count it, close it, and deliver
    /// the exit if it was waiting for this.
    fn finish(&mut self, ch: &mut Dispatcher, eof: bool, cx: &mut Context<'_>) {
        ch.close();
        if !self.count_done() {
            return;
        }
        let mut shared = self.shared.borrow_mut();
        if eof {
            if let Err(e) = shared.handler.handle_eof(self.stream, cx) {
                shared.handler.handle_error(e, cx);
            }
        }
        shared.deliver_exit_when_done(cx);
    }
}

impl<H: ChildHandler> Handler for OutputRelay<H> {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        let n = ch.recv(&mut buf)?;
        if n > 0 {
            self.shared
                .borrow_mut()
                .handler
                .handle_output(self.stream, &buf[..n], cx)?;
        }
        Ok(()) // n == 0: handle_close follows
    }
    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.finish(ch, true, cx);
        Ok(())
    }
    /// Keeps relaying through a graceful shutdown: the pipe ends when the
    /// child does (or the grace period does).
    fn handle_shutdown(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, cx: &mut Context<'_>) {
        self.shared.borrow_mut().handler.handle_error(err, cx);
        self.finish(ch, false, cx);
    }
}

/// The handler of a child's stdin channel (see [`ChildProcess::stdin`]):
/// the [`DispatcherWithSend`] writes what is queued; this closes the
/// channel when the child closes its end (or exits), and logs errors.
#[derive(Debug)]
pub struct ChildStdin {
    pid: u32,
}

impl Handler<DispatcherWithSend> for ChildStdin {
    fn readable(&mut self, _ch: &DispatcherWithSend) -> bool {
        false
    }
    fn handle_close(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if ch.pending() > 0 {
            log::debug!(
                "child {}: stdin closed with {} bytes unsent",
                self.pid,
                ch.pending()
            );
        }
        ch.close();
        Ok(())
    }
    fn handle_error(&mut self, ch: &mut DispatcherWithSend, err: io::Error, _cx: &mut Context<'_>) {
        log::error!("child {}: writing stdin: {err}; closing it", self.pid);
        ch.close();
    }
    /// A graceful shutdown: what is queued goes out, then EOF.
    fn handle_shutdown(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        ch.close_when_done();
        ch.initiate_send()
    }
}

/// The handler of the exit channel: reaps this child, and only it.
struct ExitWatcher<H> {
    /// `None` once reaped.
    child: Option<Child>,
    /// The stdin channel, closed once the child is gone (nothing can read
    /// it any more; select(2) would never report it).
    stdin: Token,
    shared: Rc<RefCell<Shared<H>>>,
}

impl<H: ChildHandler> SignalHandler for ExitWatcher<H> {
    fn handle_signal(&mut self, _signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(child) = self.child.as_mut() else {
            // Reaped; an output channel closed since (see `OutputRelay`'s
            // `Drop`) may have been what the exit waited for.
            self.shared.borrow_mut().deliver_exit_when_done(cx);
            return Ok(());
        };
        // waitpid(pid, WNOHANG) for this pid only.
        let status = match child.try_wait() {
            Ok(Some(status)) => status,
            Ok(None) => return Ok(()), // another child's SIGCHLD, or a stop
            Err(e) => {
                let pid = child.id();
                self.child = None;
                let own = cx.token();
                cx.close(own);
                cx.close(self.stdin);
                return Err(io::Error::new(
                    e.kind(),
                    format!("waiting for child {pid}: {e}"),
                ));
            }
        };
        log::trace!("child {}: reaped, {status}", child.id());
        self.child = None;
        cx.close(self.stdin);
        // This channel leaves with the exit's delivery, which waits for
        // the output channels.
        let mut shared = self.shared.borrow_mut();
        shared.status = Some(status);
        shared.deliver_exit_when_done(cx);
        Ok(())
    }

    /// Keeps waiting for the child through a graceful shutdown.
    fn handle_shutdown(&mut self, _ch: &mut Signals, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    fn handle_error(&mut self, ch: &mut Signals, err: io::Error, cx: &mut Context<'_>) {
        self.shared.borrow_mut().handler.handle_error(err, cx);
        if self.child.is_none() {
            ch.close();
        }
    }
}

impl<H> Drop for ExitWatcher<H> {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // Reap it if it has exited meanwhile; otherwise say so.
            if let Ok(None) = child.try_wait() {
                log::warn!(
                    "child {} still running as its channel leaves the map: not waited for",
                    child.id()
                );
            }
        }
    }
}
