//! One recording handler for the library's tests: [`Recorder`] logs every
//! event it gets as a string, then does what its hook for that event says,
//! or its default. It is asyncore's `BaseTestHandler` with hooks.
//!
//! The log words: `"read"`, `"write"`, `"connect"`, `"accept"`,
//! `"accepted"`, `"expt"`, `"close"`, `"timeout"`, `"error:<message>"`.
//!
//! Defaults, without a hook (each one explicit, so a test says what it
//! relies on):
//!
//! | event            | default                                              |
//! |------------------|------------------------------------------------------|
//! | readable         | `true` ([`Recorder::readable`] overrides)            |
//! | writable         | `true` ([`Recorder::writable`] overrides)            |
//! | read             | nothing: the data stays ([`Recorder::discard_reads`] reads and drops it) |
//! | write            | nothing                                              |
//! | connect          | nothing                                              |
//! | accept           | accepts one connection and hands it to accepted      |
//! | accepted         | drops (closes) the new socket                        |
//! | expt             | nothing                                              |
//! | close            | closes the channel                                   |
//! | timeout          | nothing                                              |
//! | error            | runs the error hook if any, then always closes (even a listener) |

use selectloop::{Context, Dispatcher, Handler, SockAddr, Socket};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

/// The events a [`Recorder`] saw, oldest first; shared with the test.
pub type Log = Rc<RefCell<Vec<String>>>;

/// A hook run after an event is logged; its result is the handler's.
pub type Hook = Box<dyn FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()>>;

/// A hook for `handle_accepted`: the listener, the new socket, the peer.
pub type AcceptedHook =
    Box<dyn FnMut(&mut Dispatcher, Socket, SockAddr, &mut Context<'_>) -> io::Result<()>>;

/// A hook for `handle_error`, run before the channel is closed.
pub type ErrorHook = Box<dyn FnMut(&mut Dispatcher, &io::Error)>;

/// An empty log.
pub fn new_log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// A copy of what `log` holds now.
pub fn events(log: &Log) -> Vec<String> {
    log.borrow().clone()
}

/// Whether `log` has the event `what` (`"error"` matches any
/// `"error:<message>"`).
pub fn has(log: &Log, what: &str) -> bool {
    log.borrow()
        .iter()
        .any(|e| e == what || e.starts_with(&format!("{what}:")))
}

/// Asserts `log` has no `"error:..."` event; `what` names the case.
#[track_caller]
pub fn assert_no_errors(log: &Log, what: &dyn std::fmt::Display) {
    let log = log.borrow();
    assert!(
        !log.iter().any(|e| e.starts_with("error")),
        "{what}: unexpected handle_error: {log:?}"
    );
}

/// `f` as an event hook (for the [`Recorder`] fields).
pub fn hook<F>(f: F) -> Option<Hook>
where
    F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
{
    Some(Box::new(f))
}

/// `f` as an accepted hook (for [`Recorder::on_accepted`]).
pub fn on_accepted<F>(f: F) -> Option<AcceptedHook>
where
    F: FnMut(&mut Dispatcher, Socket, SockAddr, &mut Context<'_>) -> io::Result<()> + 'static,
{
    Some(Box::new(f))
}

/// An accepted hook that makes every accepted connection a quiet channel
/// (readable, not writable) that reads and discards what arrives (4 KiB a
/// read), with no hook for anything else.
pub fn keep_accepted() -> Option<AcceptedHook> {
    on_accepted(|_ch, sock, _addr, cx| {
        let mut p = Recorder::quiet().writable(false);
        p.on_read = hook(|ch, _cx| {
            ch.recv(&mut [0u8; 4096])?;
            Ok(())
        });
        cx.add(Dispatcher::from_socket(sock)?, p);
        Ok(())
    })
}

/// Records every event in its log, then runs that event's hook, or the
/// default of the module's table. Hooks are public fields (set them with
/// [`hook`]) or builder methods.
#[derive(Default)]
pub struct Recorder {
    pub log: Log,
    /// `None`: readable.
    pub readable: Option<bool>,
    /// `None`: writable.
    pub writable: Option<bool>,
    pub on_read: Option<Hook>,
    pub on_write: Option<Hook>,
    pub on_connect: Option<Hook>,
    pub on_accepted: Option<AcceptedHook>,
    pub on_expt: Option<Hook>,
    /// `None`: close the channel.
    pub on_close: Option<Hook>,
    pub on_timeout: Option<Hook>,
    /// Runs before the channel is closed.
    pub on_error: Option<ErrorHook>,
}

impl Recorder {
    /// A recorder logging into `log`, every default as in the module table.
    pub fn new(log: &Log) -> Recorder {
        Recorder {
            log: log.clone(),
            ..Recorder::default()
        }
    }

    /// A recorder whose log nobody reads.
    pub fn quiet() -> Recorder {
        Recorder::default()
    }

    /// What `readable` answers.
    pub fn readable(mut self, readable: bool) -> Self {
        self.readable = Some(readable);
        self
    }

    /// What `writable` answers.
    pub fn writable(mut self, writable: bool) -> Self {
        self.writable = Some(writable);
        self
    }

    /// A read hook that reads (at most 256 bytes) and discards them, so a
    /// readable channel does not see the same data on every pass; a later
    /// `on_read` replaces it.
    pub fn discard_reads(self) -> Self {
        self.on_read(|ch, _cx| ch.recv(&mut [0u8; 256]).map(drop))
    }

    pub fn on_read<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_read = hook(f);
        self
    }

    pub fn on_write<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_write = hook(f);
        self
    }

    pub fn on_connect<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_connect = hook(f);
        self
    }

    pub fn on_accepted<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, Socket, SockAddr, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_accepted = on_accepted(f);
        self
    }

    pub fn on_expt<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_expt = hook(f);
        self
    }

    pub fn on_close<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_close = hook(f);
        self
    }

    pub fn on_timeout<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &mut Context<'_>) -> io::Result<()> + 'static,
    {
        self.on_timeout = hook(f);
        self
    }

    pub fn on_error<F>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Dispatcher, &io::Error) + 'static,
    {
        self.on_error = Some(Box::new(f));
        self
    }

    fn push(&self, event: impl Into<String>) {
        self.log.borrow_mut().push(event.into());
    }
}

/// Runs `hook` if there is one.
fn run(hook: &mut Option<Hook>, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
    hook.as_mut().map_or(Ok(()), |f| f(ch, cx))
}

impl Handler for Recorder {
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        self.readable.unwrap_or(true)
    }
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        self.writable.unwrap_or(true)
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("read");
        run(&mut self.on_read, ch, cx)
    }
    fn handle_write(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("write");
        run(&mut self.on_write, ch, cx)
    }
    fn handle_connect(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("connect");
        run(&mut self.on_connect, ch, cx)
    }
    fn handle_accept(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("accept");
        if let Some((sock, addr)) = ch.accept()? {
            self.handle_accepted(ch, sock, addr, cx)?;
        }
        Ok(())
    }
    fn handle_accepted(
        &mut self,
        ch: &mut Dispatcher,
        sock: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        self.push("accepted");
        match self.on_accepted.as_mut() {
            Some(f) => f(ch, sock, addr, cx),
            None => Ok(()), // drops `sock`
        }
    }
    fn handle_expt(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("expt");
        run(&mut self.on_expt, ch, cx)
    }
    fn handle_close(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("close");
        match self.on_close.as_mut() {
            Some(f) => f(ch, cx),
            None => {
                ch.close();
                Ok(())
            }
        }
    }
    fn handle_timeout(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.push("timeout");
        run(&mut self.on_timeout, ch, cx)
    }
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, _cx: &mut Context<'_>) {
        self.push(format!("error:{err}"));
        if let Some(f) = self.on_error.as_mut() {
            f(ch, &err);
        }
        ch.close();
    }
}
