//! What every example shares: the `--poll/--select/--trace` switches, logging
//! to stderr, the `listening on` line, and one-line fatal errors.
#![allow(dead_code)] // not every example uses every helper

pub mod raw_server;

use selectloop::{Backend, Loop};
use std::fmt::Display;
use std::io::Write;

/// The backend switches of every example (EXAMPLES.md:
/// `--poll|--select|--epoll`).
#[derive(clap::Args, Debug, Clone)]
pub struct LoopArgs {
    /// Run the loop on poll(2) (asyncore's use_poll=True)
    #[arg(long, conflicts_with_all = ["select", "epoll"])]
    pub poll: bool,
    /// Run the loop on select(2) (the default, as asyncore's use_poll=False)
    #[arg(long, conflicts_with = "epoll")]
    pub select: bool,
    /// Run the loop on epoll(7) (Linux only)
    #[arg(long)]
    pub epoll: bool,
    /// Print every loop iteration (what select/poll/epoll were asked and
    /// answered, which handler ran) to stderr; same as
    /// RUST_LOG=selectloop=trace
    #[arg(long)]
    pub trace: bool,
}

impl LoopArgs {
    /// The backend the flags ask for.
    pub fn backend(&self) -> Backend {
        if self.epoll {
            Backend::Epoll
        } else if self.poll {
            Backend::Poll
        } else {
            Backend::Select
        }
    }

    /// Sets up logging (stderr) and returns the loop the flags ask for:
    /// asyncore.loop(timeout=None, use_poll=...). A backend this platform
    /// lacks (epoll off Linux) is a one-line error and exit status 2.
    pub fn start(&self) -> Loop {
        init_logging(self.trace);
        let backend = self.backend();
        if !backend.is_available() {
            eprintln!(
                "error: --{backend} is not available on this platform (use --poll or --select)"
            );
            std::process::exit(2);
        }
        Loop::new().timeout(None).backend(backend)
    }
}

/// Parses the command line (clap), keeping EXAMPLES.md's contract for bad
/// arguments: a one-line error naming the problem, the usage, exit status 2.
/// (clap leaves the usage out for a value that does not parse.)
pub fn parse_args<A: clap::Parser>() -> A {
    A::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
            e.exit();
        }
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("error: bad arguments");
        let bin = std::env::args_os()
            .next()
            .map(std::path::PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let usage = A::command().bin_name(bin).render_usage().to_string();
        eprintln!("{first}\n\n{usage}\n\nFor more information, try '--help'.");
        std::process::exit(2)
    })
}

/// Logs go to stderr: `info` by default, `RUST_LOG` overrides, `--trace`
/// adds the loop's trace lines.
pub fn init_logging(trace: bool) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if trace {
        builder.filter_module("selectloop", log::LevelFilter::Trace);
    }
    builder
        .format_timestamp(None)
        .target(env_logger::Target::Stderr)
        .init();
}

/// Prints the one stdout line a server owes its caller, flushed.
pub fn announce_listening(addr: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// A runtime failure: one line on stderr, exit status 1.
pub fn fail(what: impl Display) -> ! {
    eprintln!("error: {what}");
    std::process::exit(1)
}

/// The handler that ends the loop on SIGINT/SIGTERM.
///
/// A signal handler may do almost nothing, and a flag it sets cannot wake a
/// loop sleeping in select(2)/poll(2) (the wrappers retry `EINTR`). The
/// crate's [`Signals`](selectloop::sources::Signals) source is the
/// *self-pipe* done once: its OS-level handler writes to an eventfd (or a
/// pipe) that sits in the map like any channel, so the signal becomes an
/// ordinary read event, and this handler stops the loop from inside it,
/// which is asyncore's `raise ExitNow`.
struct StopOnSignal;

impl selectloop::sources::SignalHandler for StopOnSignal {
    fn handle_signal(
        &mut self,
        signal: i32,
        cx: &mut selectloop::Context<'_>,
    ) -> std::io::Result<()> {
        log::info!("signal {signal} received, shutting down");
        cx.exit();
        Ok(())
    }
}

/// The SIGINT/SIGTERM source; exits with a one-line error if the handlers
/// cannot be installed.
pub fn stop_signals() -> selectloop::sources::Signals {
    selectloop::sources::Signals::new(&[libc::SIGINT, libc::SIGTERM])
        .unwrap_or_else(|e| fail(format_args!("cannot install signal handlers: {e}")))
}

/// A new map with a channel that stops the loop (exit status 0) when the
/// process gets SIGINT or SIGTERM. Exits with a one-line error if the
/// handlers cannot be installed. Call it before [`listen`]: once
/// `listening on` is out, a SIGTERM must find its handler in place.
pub fn map_ending_on_signals() -> selectloop::Map {
    let mut map = selectloop::Map::new();
    map.add(stop_signals(), StopOnSignal);
    map
}

/// A listening dispatcher on `addr`, as asyncore servers make it in
/// `__init__`: `create_socket`, `set_reuse_addr`, `bind`, `listen`. Prints
/// `listening on IP:PORT` (the real port for `:0`); exits with a one-line
/// error (address in use, ...) if any step fails.
pub fn listen(addr: std::net::SocketAddr, backlog: i32) -> selectloop::Dispatcher {
    use selectloop::{Dispatcher, Domain, Type};
    let make = || -> std::io::Result<Dispatcher> {
        let mut server = Dispatcher::create_socket(Domain::for_address(addr), Type::STREAM)?;
        server.set_reuse_addr()?;
        server.bind(addr)?;
        server.listen(backlog)?;
        Ok(server)
    };
    let server = make().unwrap_or_else(|e| fail(format_args!("cannot listen on {addr}: {e}")));
    if let Some(bound) = server.addr() {
        announce_listening(selectloop::DisplayAddr(bound));
    }
    server
}

/// `asyncore.loop()`: runs until the map is empty or a signal stops it;
/// a failure of the loop itself is a one-line error and exit status 1.
pub fn run(event_loop: &Loop, map: &mut selectloop::Map) {
    if let Err(e) = event_loop.clone().run(map) {
        fail(format_args!("event loop failed: {e}"));
    }
}

/// Prints one line to stdout and flushes it at once, so a reader at the
/// other end of a pipe sees it now. A closed stdout is ignored (`println!`
/// would panic on it).
pub fn say(line: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// SIGINT and SIGTERM for a loop written by hand (the raw servers): the
/// [`Signals`](selectloop::sources::Signals) source's fd is readable once
/// either arrived, so a signal shows up in the very select(2)/poll(2) call
/// the server already makes.
pub struct StopSignals(selectloop::sources::Signals);

impl StopSignals {
    /// Installs the handlers; exits with a one-line error if it cannot.
    pub fn new() -> StopSignals {
        StopSignals(stop_signals())
    }
}

impl std::os::fd::AsRawFd for StopSignals {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        // The source is never closed while the server runs.
        self.0.fileno().unwrap_or(-1)
    }
}

/// A flag's positive number of seconds (fractions allowed: `0.5`), at
/// most a day.
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "`{text}`: give more than 0 and at most 86400 seconds"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
