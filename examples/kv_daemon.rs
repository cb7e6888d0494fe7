//! A small in-memory key-value daemon, written the way the guide's chapter
//! `guide::daemon` recommends: one loop, and every source of work a
//! channel of it. The contract is docs/EXAMPLES.md, section `kv_daemon`.
//!
//! | what | how |
//! |---|---|
//! | the line protocol on TCP and a Unix socket | two listeners, each connection an [`AsyncChat`] + [`AsyncChatHandler`] |
//! | `STATS` datagrams | a plain UDP [`Dispatcher`] |
//! | idle connections | a per-channel deadline ([`Dispatcher::set_timeout`] on every input, `handle_timeout`) |
//! | the stats line every second | a [`Timer::every`] |
//! | SIGTERM, SIGINT, SIGHUP | [`Signals`] + [`SignalHandler`]; SIGTERM is [`Context::shutdown`] |
//! | `SLOW MS KEY` | a worker thread answering through [`message_channel`] |
//! | the config's `load = COMMAND` | [`ChildProcess::spawn`] + [`ChildHandler`] |
//!
//! Replies leave each connection in command order: while a `SLOW` answer
//! is owed, later replies wait in the connection's queue behind it. On
//! SIGTERM every reply already owed is delivered (a pending `SLOW` too, if
//! it comes within the 4.5 s grace period), then each connection is closed
//! after its last reply, the Unix socket path is removed, and the process
//! exits 0. The signal channel closes with the shutdown, which restores
//! the default actions: a second SIGTERM or SIGINT during the grace period
//! ends the process at once. The daemon closes a connection itself (QUIT, idle, shutdown, a
//! line too long) with a lingering close: `shutdown(SHUT_WR)` after the
//! last reply, then input discarded until the client closes (at most 2 s),
//! so that unread input cannot make the kernel reset the connection and
//! destroy the reply.
//!
//! A SIGHUP re-reads the config file: a new `idle_timeout` applies to
//! connections from then on (new ones, and existing ones from their next
//! input), its `load` commands run again; a bad file is logged and the old
//! settings stay. `commands=` in the stats counts every command line
//! answered (errors included) and every UDP `STATS`.
//!
//! Run: `cargo run --example kv_daemon -- --tcp 127.0.0.1:7379 --unix /tmp/kv.sock --udp 127.0.0.1:7379 --idle-timeout 60 [--config kv.conf] [--poll|--epoll] [--trace]`

mod common;

use clap::Parser;
use selectloop::sources::{
    message_channel, ChildHandler, ChildProcess, ChildStream, MessageChannel, MessageHandler,
    Sender, SignalHandler, Signals,
};
use selectloop::{
    AsyncChat, AsyncChatHandler, Context, Dispatcher, DisplayAddr, Domain, Handle, Handler, Map,
    Predicates, SockAddr, Socket, Stop, Timer, Type,
};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A small in-memory key-value daemon (TCP, a Unix socket, UDP STATS).
#[derive(Parser, Debug)]
struct Args {
    /// TCP address to listen on
    #[arg(long, default_value = "127.0.0.1:7379")]
    tcp: SocketAddr,
    /// Also listen on this Unix-domain socket path (replaced if it exists
    /// as a socket; removed at exit)
    #[arg(long)]
    unix: Option<PathBuf>,
    /// Also answer `STATS` datagrams on this UDP address
    #[arg(long)]
    udp: Option<SocketAddr>,
    /// Close a connection that sends nothing for this many seconds
    #[arg(long, default_value = "300", value_parser = common::parse_seconds)]
    idle_timeout: Duration,
    /// Config file (`idle_timeout = SECS`, `load = SHELL COMMAND`), read at
    /// start and on SIGHUP
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// The longest command line (64 KiB).
const MAX_LINE: usize = 64 * 1024;
/// The longest `SLOW` wait.
const MAX_SLOW_MS: u64 = 10_000;
/// The grace period of a graceful shutdown: under the contract's 5 s to
/// exit, leaving room for the last closes and the exit itself.
const GRACE: Duration = Duration::from_millis(4_500);
/// How long a lingering close waits for the client's end of stream.
const LINGER: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------
// The config file

/// What a config file says.
#[derive(Debug, Default)]
struct Config {
    idle_timeout: Option<Duration>,
    loads: Vec<String>,
}

impl Config {
    /// Reads and checks `path`; the error is one line naming the file (and
    /// the line).
    fn read(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let mut config = Config::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: String| {
                format!(
                    "config file {}: line {}: {what}",
                    path.display(),
                    number + 1
                )
            };
            let Some((name, value)) = line.split_once('=') else {
                return Err(bad(format!("expected `NAME = VALUE`, got `{line}`")));
            };
            let value = value.trim();
            match name.trim() {
                "idle_timeout" => {
                    config.idle_timeout = Some(common::parse_seconds(value).map_err(bad)?)
                }
                "load" if !value.is_empty() => config.loads.push(value.to_string()),
                "load" => return Err(bad("`load` needs a shell command".into())),
                other => return Err(bad(format!("unknown setting `{other}`"))),
            }
        }
        Ok(config)
    }
}

// ---------------------------------------------------------------------------
// What every handler shares

/// The daemon's state, shared (`Rc`) by the handlers of its channels. All
/// of it lives on the loop's thread; the worker thread only sees
/// [`SlowJob`]s.
struct Daemon {
    store: RefCell<HashMap<Vec<u8>, Vec<u8>>>,
    connections: Cell<usize>,
    commands: Cell<u64>,
    /// The command line's idle timeout, and the one in force (the config
    /// file's, if it sets one).
    cli_idle_timeout: Duration,
    idle_timeout: Cell<Duration>,
    config_path: Option<PathBuf>,
    /// To the worker thread.
    slow_jobs: mpsc::Sender<SlowJob>,
    /// `SLOW` answers not yet back from the worker.
    slow_pending: Cell<usize>,
    shutting_down: Cell<bool>,
}

impl Daemon {
    fn stats(&self) -> String {
        format!(
            "connections={} keys={} commands={}",
            self.connections.get(),
            self.store.borrow().len(),
            self.commands.get()
        )
    }

    /// The reply `GET key` gives now (without the `\r\n`).
    fn get(&self, key: &[u8]) -> Vec<u8> {
        match self.store.borrow().get(key) {
            Some(value) => [b"VALUE ".as_slice(), value].concat(),
            None => b"NOT_FOUND".to_vec(),
        }
    }

    /// Applies a config file: the idle timeout for connections from now
    /// on, and its `load` commands started as children.
    fn apply(self: &Rc<Self>, config: Config, cx: &mut impl selectloop::sources::AddChannel) {
        self.idle_timeout
            .set(config.idle_timeout.unwrap_or(self.cli_idle_timeout));
        for command in config.loads {
            let loader = Loader {
                daemon: Rc::clone(self),
                command: command.clone(),
                line: Vec::new(),
                skipping: false,
                loaded: 0,
            };
            match ChildProcess::spawn(Command::new("sh").arg("-c").arg(&command), loader, cx) {
                Ok(child) => log::info!("load: started `{command}` (pid {})", child.id()),
                Err(e) => log::error!("load: cannot start `{command}`: {e}"),
            }
        }
    }
}

/// Splits off the first run of non-space bytes; the rest starts after the
/// spaces that follow it.
fn word(text: &[u8]) -> (&[u8], &[u8]) {
    let text = trim_start(text);
    let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
    (&text[..end], trim_start(&text[end..]))
}

fn trim_start(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|&b| b != b' ').unwrap_or(text.len());
    &text[start..]
}

/// `KEY VALUE` (the value may be the rest of the line), as `SET` takes it.
fn key_value(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let (key, value) = word(text);
    (!key.is_empty() && !value.is_empty()).then_some((key, value))
}

/// Exactly one word.
fn one_word(text: &[u8]) -> Option<&[u8]> {
    match word(text) {
        (w, []) if !w.is_empty() => Some(w),
        _ => None,
    }
}

/// What one command line asks for.
enum Action {
    Reply(Vec<u8>),
    Slow { ms: u64, key: Vec<u8> },
    Quit,
}

fn execute(daemon: &Daemon, line: &[u8]) -> Action {
    daemon.commands.set(daemon.commands.get() + 1);
    let unknown = || Action::Reply(b"ERROR unknown command".to_vec());
    let (command, rest) = word(line);
    match command {
        b"SET" => match key_value(rest) {
            Some((key, value)) => {
                daemon
                    .store
                    .borrow_mut()
                    .insert(key.to_vec(), value.to_vec());
                Action::Reply(b"OK".to_vec())
            }
            None => unknown(),
        },
        b"GET" => match one_word(rest) {
            Some(key) => Action::Reply(daemon.get(key)),
            None => unknown(),
        },
        b"DEL" => match one_word(rest) {
            Some(key) => match daemon.store.borrow_mut().remove(key) {
                Some(_) => Action::Reply(b"DELETED".to_vec()),
                None => Action::Reply(b"NOT_FOUND".to_vec()),
            },
            None => unknown(),
        },
        b"SLOW" => {
            let (ms, rest) = word(rest);
            let ms = std::str::from_utf8(ms)
                .ok()
                .and_then(|m| m.parse::<u64>().ok());
            match (ms, one_word(rest)) {
                (Some(ms), Some(key)) if ms <= MAX_SLOW_MS => Action::Slow {
                    ms,
                    key: key.to_vec(),
                },
                _ => unknown(),
            }
        }
        b"STATS" if rest.is_empty() => {
            Action::Reply(format!("STATS {}", daemon.stats()).into_bytes())
        }
        b"QUIT" if rest.is_empty() => Action::Quit,
        _ => unknown(),
    }
}

// ---------------------------------------------------------------------------
// A client connection (TCP or Unix): AsyncChat with a "\n" terminator

/// One entry of a connection's queue of replies not sent yet because a
/// `SLOW` answer before them is still owed.
enum Reply {
    Ready(Vec<u8>),
    Slow(u64),
    Close,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ConnState {
    /// Taking commands.
    Open,
    /// No more commands: close after the last reply owed.
    Closing,
    /// The last reply is out and `shutdown(SHUT_WR)` done: input is
    /// discarded until the client's end of stream (or [`LINGER`]).
    Lingering,
}

struct Conn {
    daemon: Rc<Daemon>,
    peer: String,
    line: Vec<u8>,
    /// Replies waiting behind a `SLOW` answer (empty: replies go out at once).
    held: VecDeque<Reply>,
    next_slow: u64,
    state: ConnState,
    /// The client closed its side (or reset): nothing more to read.
    peer_gone: bool,
}

impl Conn {
    fn new(daemon: Rc<Daemon>, peer: String) -> Conn {
        daemon.connections.set(daemon.connections.get() + 1);
        Conn {
            daemon,
            peer,
            line: Vec::new(),
            held: VecDeque::new(),
            next_slow: 0,
            state: ConnState::Open,
            peer_gone: false,
        }
    }

    /// Sends `line` + `\r\n` now, or queues it behind a pending `SLOW`.
    fn reply(&mut self, ch: &mut AsyncChat, mut line: Vec<u8>) {
        line.extend_from_slice(b"\r\n");
        if self.held.is_empty() {
            ch.push(&line);
        } else {
            self.held.push_back(Reply::Ready(line));
        }
    }

    /// No more commands; close once every reply owed is out.
    fn close_after_replies(&mut self, ch: &mut AsyncChat) {
        if self.state != ConnState::Open {
            return;
        }
        self.state = ConnState::Closing;
        self.line = Vec::new();
        if self.held.is_empty() {
            ch.close_when_done();
        } else {
            self.held.push_back(Reply::Close);
        }
    }

    /// The worker's answer to `SLOW` number `id` came: it takes its place,
    /// and the replies behind it go out.
    fn answer_slow(&mut self, ch: &mut AsyncChat, id: u64, mut answer: Vec<u8>) {
        answer.extend_from_slice(b"\r\n");
        if let Some(slot) = self
            .held
            .iter_mut()
            .find(|r| matches!(r, Reply::Slow(n) if *n == id))
        {
            *slot = Reply::Ready(answer);
        }
        while let Some(front) = self.held.front() {
            match front {
                Reply::Slow(_) => break,
                Reply::Ready(line) => ch.push(line),
                Reply::Close => ch.close_when_done(),
            }
            self.held.pop_front();
        }
    }

    /// Any input pushes the idle deadline back.
    fn touch(&self, ch: &mut AsyncChat) {
        if self.state == ConnState::Open {
            ch.set_timeout(self.daemon.idle_timeout.get());
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.daemon
            .connections
            .set(self.daemon.connections.get().saturating_sub(1));
    }
}

impl AsyncChatHandler for Conn {
    // What `readable`/`writable` answer changes only in this channel's own
    // events, or when the SLOW answer reaches it through `cx.get_mut`
    // (after which the loop asks again): the fast path is safe.
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;

    fn collect_incoming_data(&mut self, ch: &mut AsyncChat, data: &[u8]) {
        self.touch(ch);
        if self.state != ConnState::Open {
            return; // after QUIT, or lingering: discarded
        }
        if self.line.len() + data.len() > MAX_LINE {
            log::info!("{}: line too long, closing", self.peer);
            self.reply(ch, b"ERROR line too long".to_vec());
            self.close_after_replies(ch);
            return;
        }
        self.line.extend_from_slice(data);
    }

    fn found_terminator(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        self.touch(ch);
        if self.state != ConnState::Open {
            return Ok(());
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        match execute(&self.daemon, &line) {
            Action::Reply(reply) => self.reply(ch, reply),
            Action::Quit => {
                self.reply(ch, b"BYE".to_vec());
                self.close_after_replies(ch);
            }
            Action::Slow { ms, key } => {
                let id = self.next_slow;
                self.next_slow += 1;
                let job = SlowJob {
                    due: Instant::now() + Duration::from_millis(ms),
                    conn: cx.handle(self, ch),
                    id,
                    key,
                };
                match self.daemon.slow_jobs.send(job) {
                    Ok(()) => {
                        self.held.push_back(Reply::Slow(id));
                        let pending = &self.daemon.slow_pending;
                        pending.set(pending.get() + 1);
                    }
                    Err(mpsc::SendError(job)) => {
                        log::error!("the SLOW worker is gone; answering at once");
                        let answer = self.daemon.get(&job.key);
                        self.reply(ch, answer);
                    }
                }
            }
        }
        // Keep the line buffer's memory for the next line.
        line.clear();
        self.line = line;
        Ok(())
    }

    fn readable(&mut self, _ch: &AsyncChat) -> bool {
        !self.peer_gone
    }

    fn handle_timeout(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        match self.state {
            ConnState::Open => {
                log::info!("{}: idle, closing", self.peer);
                self.reply(ch, b"BYE idle".to_vec());
                self.close_after_replies(ch);
                // One more idle period for the replies to leave.
                ch.set_timeout(self.daemon.idle_timeout.get());
            }
            ConnState::Lingering => ch.close(),
            ConnState::Closing if self.held.iter().any(|r| matches!(r, Reply::Slow(_))) => {
                // A worker's answer is still owed (it comes within
                // MAX_SLOW_MS): wait for it.
                ch.set_timeout(self.daemon.idle_timeout.get());
            }
            ConnState::Closing => {
                // The replies were not taken for a whole idle period: a
                // client that stopped reading does not hold the
                // connection (and its queued replies) for good.
                log::info!("{}: not reading its replies, closing", self.peer);
                ch.close();
            }
        }
        Ok(())
    }

    fn handle_shutdown(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        // Every reply owed goes out (a SLOW one when it comes), then close.
        self.close_after_replies(ch);
        Ok(())
    }

    fn handle_close(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        if self.state == ConnState::Lingering || self.peer_gone {
            ch.close();
            return Ok(());
        }
        let owed = !self.held.is_empty() || ch.has_output();
        if self.state == ConnState::Closing && !owed {
            // Our own close_when_done was reached: the last reply is out.
            // Close like nginx's lingering close, so that input the client
            // sent meanwhile cannot turn the close into a reset.
            if ch.shutdown(Shutdown::Write).is_err() {
                ch.close();
            } else {
                self.state = ConnState::Lingering;
                ch.set_timeout(LINGER);
            }
        } else if owed {
            // The client half-closed (or reset) with replies owed: deliver
            // what can be, then close.
            self.peer_gone = true;
            self.close_after_replies(ch);
        } else {
            ch.close();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Listeners (TCP and Unix)

struct Listener {
    daemon: Rc<Daemon>,
}

impl Handler for Listener {
    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        sock: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let peer = match addr.as_socket() {
            Some(a) => a.to_string(),
            None => "unix client".to_string(),
        };
        log::debug!("connection from {peer}");
        let mut ch = AsyncChat::new(Dispatcher::from_accepted(sock, addr)?).with_terminator(b"\n");
        // The line limit is the connection's own (MAX_LINE), so that the
        // error reply keeps its place after the replies already owed.
        ch.set_max_incoming(usize::MAX);
        ch.set_timeout(self.daemon.idle_timeout.get());
        cx.add(ch, Conn::new(Rc::clone(&self.daemon), peer));
        Ok(())
    }
}

/// A listening stream socket on `addr` (TCP or Unix).
fn listen_on(domain: Domain, addr: SockAddr) -> io::Result<Dispatcher> {
    let mut server = Dispatcher::create_socket(domain, Type::STREAM)?;
    if domain != Domain::UNIX {
        server.set_reuse_addr()?;
    }
    server.bind(addr)?;
    server.listen(128)?;
    Ok(server)
}

/// The Unix listener at `path`; an existing socket there is replaced.
fn listen_unix(path: &Path) -> io::Result<Dispatcher> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    listen_on(Domain::UNIX, SockAddr::unix(path)?)
}

// ---------------------------------------------------------------------------
// UDP STATS

struct UdpStats {
    daemon: Rc<Daemon>,
}

impl Handler for UdpStats {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false // replies are sent at once; a full buffer drops one, as UDP may
    }

    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 512];
        let (n, from) = ch.recvfrom(&mut buf)?;
        let datagram = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
        let datagram = datagram.strip_suffix(b"\r").unwrap_or(datagram);
        if datagram == b"STATS" {
            let daemon = &self.daemon;
            daemon.commands.set(daemon.commands.get() + 1);
            let reply = format!("STATS {}", daemon.stats());
            ch.sendto(reply.as_bytes(), &from)?;
        } else {
            log::debug!("udp: ignored a datagram from {}", DisplayAddr(&from));
        }
        Ok(())
    }

    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, _cx: &mut Context<'_>) {
        // One bad datagram exchange must not stop the service.
        log::warn!("{ch:?}: {err}");
    }

    fn handle_close(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        log::debug!("{ch:?}: ignored a \"peer gone\" error on a datagram socket");
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The stats line, every second

struct StatsLine {
    daemon: Rc<Daemon>,
}

impl Handler<Timer> for StatsLine {
    fn handle_timeout(&mut self, _ch: &mut Timer, _cx: &mut Context<'_>) -> io::Result<()> {
        log::info!("stats {}", self.daemon.stats());
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Signals

struct DaemonSignals {
    daemon: Rc<Daemon>,
}

impl SignalHandler for DaemonSignals {
    fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
        if signal == libc::SIGHUP {
            match &self.daemon.config_path {
                None => log::info!("SIGHUP: no config file to reload"),
                Some(path) => match Config::read(path) {
                    Ok(config) => {
                        log::info!("SIGHUP: reloaded {}", path.display());
                        self.daemon.apply(config, cx);
                    }
                    Err(e) => log::error!("SIGHUP: {e}; keeping the old settings"),
                },
            }
        } else {
            log::info!(
                "signal {signal}: shutting down ({} SLOW replies owed)",
                self.daemon.slow_pending.get()
            );
            self.daemon.shutting_down.set(true);
            cx.shutdown(GRACE);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// SLOW: a worker thread, and its answers back through a message channel

/// A `SLOW` to answer at `due`, for `SLOW` number `id` of connection `conn`.
struct SlowJob {
    due: Instant,
    conn: Handle<AsyncChat, Conn>,
    id: u64,
    key: Vec<u8>,
}

/// The worker: holds each job until it is due, then hands it back to the
/// loop. It never touches the store: the answer is looked up in the loop,
/// so it is what `GET` gives at that time.
fn worker(jobs: mpsc::Receiver<SlowJob>, done: Sender<SlowJob>) {
    let mut waiting: BTreeMap<(Instant, u64), SlowJob> = BTreeMap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while let Some(entry) = waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            if done.send(entry.remove()).is_err() {
                return; // the loop is gone
            }
        }
        let next = match waiting.keys().next() {
            Some(&(due, _)) => jobs.recv_timeout(due.saturating_duration_since(now)),
            None => jobs
                .recv()
                .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(job) => {
                seq += 1;
                waiting.insert((job.due, seq), job);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

struct SlowAnswers {
    daemon: Rc<Daemon>,
}

impl MessageHandler<SlowJob> for SlowAnswers {
    fn handle_message(&mut self, job: SlowJob, cx: &mut Context<'_>) -> io::Result<()> {
        let pending = &self.daemon.slow_pending;
        pending.set(pending.get().saturating_sub(1));
        let answer = self.daemon.get(&job.key);
        if let Some((ch, conn)) = cx.get_mut(job.conn) {
            conn.answer_slow(ch, job.id, answer);
        }
        if self.daemon.shutting_down.get() && pending.get() == 0 {
            let me = cx.token();
            cx.close(me); // the last answer owed is in: this channel is done
        }
        Ok(())
    }

    fn handle_shutdown(
        &mut self,
        ch: &mut MessageChannel<SlowJob>,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        // Stay until the SLOW answers owed are in (or the grace period ends).
        if self.daemon.slow_pending.get() == 0 {
            ch.close();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// load = COMMAND: a child whose stdout lines are stored

struct Loader {
    daemon: Rc<Daemon>,
    command: String,
    /// A stdout line not complete yet.
    line: Vec<u8>,
    /// Inside a line that passed [`MAX_LINE`]: dropped up to its newline.
    skipping: bool,
    loaded: usize,
}

impl Loader {
    fn store_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match key_value(line) {
            Some((key, value)) => {
                self.daemon
                    .store
                    .borrow_mut()
                    .insert(key.to_vec(), value.to_vec());
                self.loaded += 1;
            }
            None if line.is_empty() => {}
            None => log::warn!(
                "load: ignored a line that is not `KEY VALUE`: {}",
                line.escape_ascii()
            ),
        }
    }
}

impl ChildHandler for Loader {
    fn handle_output(
        &mut self,
        stream: ChildStream,
        data: &[u8],
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if stream == ChildStream::Stderr {
            let text = String::from_utf8_lossy(data);
            for line in text.lines() {
                log::warn!("load: {line}");
            }
            return Ok(());
        }
        let mut rest = data;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if std::mem::take(&mut self.skipping) {
                // The end of an over-long line: dropped with the rest of it.
            } else if self.line.is_empty() {
                self.store_line(&rest[..end]);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                self.store_line(&line);
            }
            rest = &rest[end + 1..];
        }
        if self.skipping {
            // Still inside an over-long line.
        } else if self.line.len() + rest.len() > MAX_LINE {
            log::warn!("load: a line over {MAX_LINE} bytes, ignored");
            self.line.clear();
            self.skipping = true;
        } else {
            self.line.extend_from_slice(rest);
        }
        Ok(())
    }

    fn handle_eof(&mut self, stream: ChildStream, _cx: &mut Context<'_>) -> io::Result<()> {
        if stream == ChildStream::Stdout && !self.line.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.line);
            self.store_line(&line);
        }
        Ok(())
    }

    fn handle_exit(&mut self, status: ExitStatus, _cx: &mut Context<'_>) -> io::Result<()> {
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => status.to_string(),
        };
        log::debug!("load: `{}` finished", self.command);
        log::info!("loaded {} keys (exit status {status})", self.loaded);
        Ok(())
    }
}

// ---------------------------------------------------------------------------

fn main() {
    let args: Args = common::parse_args();
    // A bad config at start: one line, exit status 2, before anything runs.
    let config = match &args.config {
        Some(path) => Config::read(path).unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2)
        }),
        None => Config::default(),
    };
    let mut event_loop = args.backend.start();

    let (slow_jobs, jobs) = mpsc::channel();
    let daemon = Rc::new(Daemon {
        store: RefCell::new(HashMap::new()),
        connections: Cell::new(0),
        commands: Cell::new(0),
        cli_idle_timeout: args.idle_timeout,
        idle_timeout: Cell::new(args.idle_timeout),
        config_path: args.config.clone(),
        slow_jobs,
        slow_pending: Cell::new(0),
        shutting_down: Cell::new(false),
    });

    let mut map = Map::new();
    // Signals first: once `listening on` is out, a SIGTERM finds its
    // handler in place.
    let signals = Signals::new(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
        .unwrap_or_else(|e| common::fail(format_args!("cannot install signal handlers: {e}")));
    map.add(
        signals,
        DaemonSignals {
            daemon: Rc::clone(&daemon),
        },
    );

    let tcp = listen_on(Domain::for_address(args.tcp), args.tcp.into())
        .unwrap_or_else(|e| common::fail(format_args!("cannot listen on {}: {e}", args.tcp)));
    if let Some(bound) = tcp.addr() {
        common::announce_listening(DisplayAddr(bound));
    }
    map.add(
        tcp,
        Listener {
            daemon: Rc::clone(&daemon),
        },
    );

    let remove_unix_path = |path: &Option<PathBuf>| {
        if let Some(path) = path {
            let _ = std::fs::remove_file(path);
        }
    };
    let mut unix_path = None;
    if let Some(path) = &args.unix {
        let unix = listen_unix(path).unwrap_or_else(|e| {
            common::fail(format_args!(
                "cannot listen on unix:{}: {e}",
                path.display()
            ))
        });
        unix_path = Some(path.clone());
        common::announce_listening(format_args!("unix:{}", path.display()));
        map.add(
            unix,
            Listener {
                daemon: Rc::clone(&daemon),
            },
        );
    }

    if let Some(addr) = args.udp {
        let make = || -> io::Result<Dispatcher> {
            let mut udp = Dispatcher::create_socket(Domain::for_address(addr), Type::DGRAM)?;
            udp.bind(addr)?;
            Ok(udp)
        };
        let udp = make().unwrap_or_else(|e| {
            remove_unix_path(&unix_path);
            common::fail(format_args!("cannot listen on udp:{addr}: {e}"))
        });
        if let Some(bound) = udp.addr().and_then(|a| a.as_socket()) {
            common::announce_listening(format_args!("udp:{bound}"));
        }
        map.add(
            udp,
            UdpStats {
                daemon: Rc::clone(&daemon),
            },
        );
    }

    let (done, answers) = message_channel::<SlowJob>().unwrap_or_else(|e| {
        remove_unix_path(&unix_path);
        common::fail(format_args!("cannot make the worker's channel: {e}"))
    });
    map.add(
        answers,
        SlowAnswers {
            daemon: Rc::clone(&daemon),
        },
    );
    let spawned = std::thread::Builder::new()
        .name("slow-worker".into())
        .spawn(move || worker(jobs, done));
    if let Err(e) = spawned {
        remove_unix_path(&unix_path);
        common::fail(format_args!("cannot start the worker thread: {e}"));
    }

    map.add(
        Timer::every(Duration::from_secs(1)),
        StatsLine {
            daemon: Rc::clone(&daemon),
        },
    );

    daemon.apply(config, &mut map);

    let result = event_loop.run(&mut map);
    remove_unix_path(&unix_path);
    match result {
        Ok(Stop::Shutdown) => log::info!("shut down"),
        Ok(stop) => log::info!("loop ended: {stop:?}"),
        Err(e) => common::fail(format_args!("event loop failed: {e}")),
    }
    std::process::exit(0);
}
