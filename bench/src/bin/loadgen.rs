//! The benchmark's load generator: N non-blocking connections driven from
//! one or two threads (mio, epoll), every byte verified.
//!
//! * `pingpong`: each connection sends a `--size` byte message and waits for
//!   the whole echo (checked byte by byte) before it sends the next. Reports
//!   round trips per second and the p50/p99 round-trip latency.
//!   With `--roundtrips N` each connection stops after N measured round
//!   trips instead of after `--secs` (a fixed amount of work, so instruction
//!   counts repeat).
//! * `bulk`: each connection streams `--mib` MiB while it reads the echo back
//!   (checked byte by byte), at most `--window` KiB in flight. Reports MiB/s
//!   (payload echoed, one direction).
//!
//! * `churn`: `--conns` connects in batches of `--batch`, closed after each
//!   batch, nothing sent: what a burst of connections does to a server's
//!   accept queue. The connects of a batch go one after another, each
//!   waited for up to 2 ms before the next is made (the pace of one
//!   blocking connect after another, without a stalled one holding the
//!   rest up); a connect the kernel stalls (a SYN dropped on a full accept
//!   queue is sent again after 1 s) is left pending, closed when it
//!   completes.
//!   Reports how many took longer than 500 ms or failed.
//!
//! `--idle N` opens N more connections that do their warm-up round trip
//! (so the server has accepted them) and then stay silent beside the
//! active ones; an idle connection the server closes is an error. The
//! active connections are spread evenly among the idle ones in connect (and
//! so accept) order, the last active one connected last: a server that
//! finds its ready connections by walking its fds in order cannot stop early
//! at the front.
//!
//! Every connection first does one round trip of warm-up (so connects, the
//! server's accepts and thread spawns are not measured). With `--wait-go`
//! it then prints `ready`, waits for a `go` line on stdin, measures, prints
//! the `result` line, and keeps the connections open until stdin closes or
//! says `quit`: the driver reads the server's CPU time and syscall counts
//! around exactly the measured part.
//!
//! Output (stdout, one line): `result mode=pingpong conns=N roundtrips=R
//! secs=S rtt_per_s=X p50_us=A p99_us=B` or `result mode=bulk conns=N
//! bytes=B secs=S mib_per_s=X` or `result mode=churn connects=N slow=S
//! failed=F worst_ms=W`. Failures: `error: ...` on stderr, exit 1.

use clap::{Parser, ValueEnum};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use selectloop_bench::{fail, raise_nofile_limit, Pattern, PATTERN_PERIOD};
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Connections in progress (connecting or in their warm-up round trip) at
/// once.
const CONNECTING: usize = 64;

/// Load generator for echo servers.
#[derive(Parser, Debug, Clone)]
struct Args {
    /// Server address
    #[arg(long)]
    addr: SocketAddr,
    /// pingpong or bulk
    #[arg(long, value_enum, default_value = "pingpong")]
    mode: Mode,
    /// Number of connections
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Message size in bytes (pingpong)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured seconds (pingpong)
    #[arg(long, default_value_t = 2.0)]
    secs: f64,
    /// Measured round trips per connection (pingpong; instead of --secs)
    #[arg(long)]
    roundtrips: Option<u64>,
    /// Silent connections opened beside the active ones
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// MiB each connection streams (bulk)
    #[arg(long, default_value_t = 16)]
    mib: u64,
    /// Bytes in flight per connection, KiB (bulk)
    #[arg(long, default_value_t = 1024)]
    window: u64,
    /// Threads (1 or 2)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    threads: u8,
    /// Print `ready`, wait for `go` on stdin; keep connections until stdin closes
    #[arg(long)]
    wait_go: bool,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 120.0)]
    timeout: f64,
    /// Connects per batch (churn)
    #[arg(long, default_value_t = 20)]
    batch: usize,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Pingpong,
    Bulk,
    Churn,
}

/// What one thread measured.
#[derive(Default)]
struct Stats {
    roundtrips: u64,
    latencies_ns: Vec<u64>,
    bytes: u64,
    secs: f64,
}

/// One connection's state.
struct Conn {
    id: u64,
    stream: TcpStream,
    connected: bool,
    /// Bytes of the stream (bulk) or message (pingpong) sent / received.
    sent: u64,
    recvd: u64,
    /// Pingpong: the message in flight and its echo so far.
    msg: Vec<u8>,
    echo: Vec<u8>,
    seq: u64,
    started: Instant,
    /// Warm-up round trip done.
    warm: bool,
    /// Bulk: all bytes echoed; pingpong: stopped after the deadline.
    done: bool,
    /// Silent after its warm-up round trip.
    idle: bool,
    /// Measured round trips (pingpong).
    count: u64,
}

fn main() {
    let args = Args::parse();
    if args.conns == 0 || args.size < 16 || args.size > PATTERN_PERIOD {
        fail("need --conns >= 1 and 16 <= --size <= 65521");
    }
    if let Err(e) = raise_nofile_limit() {
        eprintln!("loadgen: cannot raise the fd limit: {e}");
    }
    let result = if args.mode == Mode::Churn {
        churn(&args)
    } else {
        run(&args)
    };
    match result {
        Ok(()) => {}
        Err(e) => fail(format_args!("loadgen: {e}")),
    }
}

/// A connect slower than this counts as stalled (a dropped SYN is sent
/// again after 1 s).
const SLOW_CONNECT: Duration = Duration::from_millis(500);

/// One connect of a churn run: the socket, and when it was made.
struct Attempt {
    sock: TcpStream,
    started: Instant,
}

/// A churn run: the connects in progress, and what the finished ones took.
struct Churn {
    poll: Poll,
    events: Events,
    pending: std::collections::HashMap<usize, Attempt>,
    slow: usize,
    failed: usize,
    worst: Duration,
}

impl Churn {
    /// Waits until `until` at most for pending connects to finish; each
    /// that did is counted and moved to `connected` (closed with its
    /// batch).
    fn wait(&mut self, until: Instant, connected: &mut Vec<TcpStream>) -> io::Result<()> {
        let left = until.saturating_duration_since(Instant::now());
        self.poll.poll(&mut self.events, Some(left))?;
        for ev in self.events.iter() {
            let Some(mut c) = self.pending.remove(&ev.token().0) else {
                continue;
            };
            let took = c.started.elapsed();
            let fail = c.sock.take_error()?.is_some() || c.sock.peer_addr().is_err();
            self.worst = self.worst.max(took);
            self.slow += usize::from(took > SLOW_CONNECT && !fail);
            self.failed += usize::from(fail);
            self.poll.registry().deregister(&mut c.sock)?;
            connected.push(c.sock);
        }
        Ok(())
    }
}

/// `--mode churn`: see the module docs. A connect the kernel stalls is not
/// waited for before the next batch (that would time the waits, not the
/// server): it is closed when it completes.
fn churn(args: &Args) -> io::Result<()> {
    let mut run = Churn {
        poll: Poll::new()?,
        events: Events::with_capacity(64),
        pending: Default::default(),
        slow: 0,
        failed: 0,
        worst: Duration::ZERO,
    };
    let batch = args.batch.max(1);
    let give_up = Instant::now() + Duration::from_secs_f64(args.timeout);
    let mut next_id = 0usize;
    while next_id < args.conns {
        let n = batch.min(args.conns - next_id);
        let mut connected: Vec<TcpStream> = Vec::with_capacity(n);
        for _ in 0..n {
            let id = next_id;
            next_id += 1;
            let started = Instant::now();
            let mut sock = TcpStream::connect(args.addr)?;
            run.poll
                .registry()
                .register(&mut sock, Token(id), Interest::WRITABLE)?;
            run.pending.insert(id, Attempt { sock, started });
            let pace = started + Duration::from_millis(2);
            while run.pending.contains_key(&id) && Instant::now() < pace {
                run.wait(pace, &mut connected)?;
            }
        }
        // the batch is closed (stalled connects stay pending)
        drop(connected);
    }
    while !run.pending.is_empty() {
        if Instant::now() >= give_up {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "a connect did not finish",
            ));
        }
        run.wait(give_up, &mut Vec::new())?;
    }
    println!(
        "result mode=churn connects={} slow={} failed={} worst_ms={:.1}",
        args.conns,
        run.slow,
        run.failed,
        run.worst.as_secs_f64() * 1e3
    );
    io::stdout().flush()
}

fn run(args: &Args) -> io::Result<()> {
    let threads = usize::from(args.threads).min(args.conns);
    // two barriers: all warm (then `ready`), and `go`
    let warm = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<io::Result<Stats>>();
    let (quit_tx, quit_rx) = std::sync::mpsc::channel::<()>();
    let quit_rx = Arc::new(std::sync::Mutex::new(quit_rx));
    let mut handles = Vec::new();
    let order = connect_order(args.conns, args.idle);
    for t in 0..threads {
        // ids 0..conns are the active connections, conns..conns+idle the idle ones
        let ids: Vec<u64> = order
            .iter()
            .copied()
            .filter(|i| (*i as usize) % threads == t)
            .collect();
        let (args, warm, go, done_tx, quit_rx) = (
            args.clone(),
            warm.clone(),
            go.clone(),
            done_tx.clone(),
            quit_rx.clone(),
        );
        handles.push(std::thread::spawn(move || {
            // A failure ends the process here: the other threads and main
            // may be waiting on a barrier this thread will never reach.
            let (stats, conns) = worker(&args, ids, &warm, &go)
                .unwrap_or_else(|e| fail(format_args!("loadgen: {e}")));
            let _ = done_tx.send(Ok(stats));
            // keep the connections open until the driver is done reading
            if let Ok(rx) = quit_rx.lock() {
                let _ = rx.recv();
            }
            drop(conns);
        }));
    }
    drop(done_tx);
    let deadline = Duration::from_secs_f64(args.timeout);
    warm.wait();
    let stdin = io::stdin();
    if args.wait_go {
        println!("ready");
        io::stdout().flush()?;
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
    }
    go.wait();
    let mut total = Stats::default();
    for _ in 0..threads {
        let s = done_rx
            .recv_timeout(deadline)
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "a worker did not finish"))??;
        total.roundtrips += s.roundtrips;
        total.latencies_ns.extend(s.latencies_ns);
        total.bytes += s.bytes;
        total.secs = total.secs.max(s.secs);
    }
    match args.mode {
        Mode::Pingpong => {
            total.latencies_ns.sort_unstable();
            let pct = |p: f64| -> f64 {
                let v = &total.latencies_ns;
                if v.is_empty() {
                    return 0.0;
                }
                let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
                v[i] as f64 / 1000.0
            };
            println!(
                "result mode=pingpong conns={} idle={} roundtrips={} secs={:.3} rtt_per_s={:.1} p50_us={:.1} p99_us={:.1}",
                args.conns,
                args.idle,
                total.roundtrips,
                total.secs,
                total.roundtrips as f64 / total.secs,
                pct(0.50),
                pct(0.99)
            );
        }
        // churn never gets here (see `main`)
        Mode::Bulk | Mode::Churn => {
            println!(
                "result mode=bulk conns={} bytes={} secs={:.3} mib_per_s={:.1}",
                args.conns,
                total.bytes,
                total.secs,
                total.bytes as f64 / (1024.0 * 1024.0) / total.secs
            );
        }
    }
    io::stdout().flush()?;
    if args.wait_go {
        let mut line = String::new();
        while stdin.lock().read_line(&mut line)? > 0 && line.trim() != "quit" {
            line.clear();
        }
    }
    for _ in 0..threads {
        let _ = quit_tx.send(());
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(())
}

/// Connection ids in connect order: the `idle` ids (`active..active+idle`)
/// with the `active` ids (`0..active`) spread evenly among them, the last
/// active id last.
fn connect_order(active: usize, idle: usize) -> Vec<u64> {
    let total = active + idle;
    let mut order = Vec::with_capacity(total);
    let mut next_idle = active as u64;
    for a in 0..active {
        // active connection a goes to position (a + 1) * total / active - 1
        let at = (a + 1) * total / active - 1;
        while order.len() < at {
            order.push(next_idle);
            next_idle += 1;
        }
        order.push(a as u64);
    }
    while (next_idle as usize) < total {
        order.push(next_idle);
        next_idle += 1;
    }
    order
}

/// Connects, warms up, waits for `go`, measures. Any failure ends the
/// process (a half-measured run is worth nothing).
fn worker(
    args: &Args,
    ids: Vec<u64>,
    warm: &Barrier,
    go: &Barrier,
) -> io::Result<(Stats, Vec<Conn>)> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout);
    let pattern = Pattern::new();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Conn> = Vec::with_capacity(ids.len());
    let mut buf = vec![0u8; 256 * 1024];

    // Phase 1: connect and warm up, at most CONNECTING connections in progress.
    let mut warmed = 0usize;
    let mut next = 0usize;
    while warmed < ids.len() {
        while next < ids.len() && next - warmed < CONNECTING {
            let mut stream = TcpStream::connect(args.addr)?;
            poll.registry().register(
                &mut stream,
                Token(next),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conns.push(Conn {
                id: ids[next],
                stream,
                connected: false,
                sent: 0,
                recvd: 0,
                msg: vec![0u8; args.size],
                echo: vec![0u8; args.size],
                seq: 0,
                started: Instant::now(),
                warm: false,
                done: false,
                idle: ids[next] >= args.conns as u64,
                count: 0,
            });
            fill_msg(&mut conns[next], &pattern);
            next += 1;
        }
        check_deadline(deadline, "warm-up", warmed, ids.len())?;
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .or_else(ignore_eintr)?;
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if c.warm {
                continue;
            }
            if !c.connected && !finish_connect(c)? {
                continue;
            }
            if pingpong_step(c, None)? {
                c.warm = true;
                warmed += 1;
            }
        }
    }
    // an idle connection closed during the warm-up left no event to come
    for c in conns.iter_mut().filter(|c| c.idle) {
        check_idle(c)?;
    }
    warm.wait();
    go.wait();

    // Phase 2: measure.
    let mut stats = Stats::default();
    let start = Instant::now();
    match args.mode {
        Mode::Pingpong => {
            let stop = start + Duration::from_secs_f64(args.secs);
            stats.latencies_ns.reserve(match args.roundtrips {
                Some(n) => (n as usize).saturating_mul(conns.len()).min(1 << 24),
                None => 1 << 20,
            });
            // the warm-up left every connection idle: start the active ones
            for c in conns.iter_mut().filter(|c| !c.idle) {
                fill_msg(c, &pattern);
                c.started = Instant::now();
                pingpong_step(c, None)?;
            }
            let mut active = conns.iter().filter(|c| !c.idle).count();
            while active > 0 {
                check_deadline(deadline, "pingpong", 0, 0)?;
                poll.poll(&mut events, Some(Duration::from_millis(100)))
                    .or_else(ignore_eintr)?;
                for ev in events.iter() {
                    let c = &mut conns[ev.token().0];
                    if c.idle {
                        check_idle(c)?;
                        continue;
                    }
                    if c.done {
                        continue;
                    }
                    while pingpong_step(c, Some(&mut stats))? {
                        c.count += 1;
                        let finished = match args.roundtrips {
                            Some(n) => c.count >= n,
                            None => Instant::now() >= stop,
                        };
                        if finished {
                            c.done = true;
                            active -= 1;
                            break;
                        }
                        fill_msg(c, &pattern);
                        c.started = Instant::now();
                    }
                }
                if args.roundtrips.is_none() && Instant::now() >= stop + Duration::from_secs(5) {
                    // a stalled connection: report what was measured
                    break;
                }
            }
            stats.secs = match args.roundtrips {
                Some(_) => start.elapsed().as_secs_f64(),
                None => args.secs,
            };
        }
        // churn never gets here (see `main`)
        Mode::Bulk | Mode::Churn => {
            let total = args.mib * 1024 * 1024;
            let window = args.window * 1024;
            for c in conns.iter_mut().filter(|c| !c.idle) {
                c.sent = 0;
                c.recvd = 0;
                bulk_step(c, &pattern, &mut buf, total, window)?;
            }
            let streams = conns.iter().filter(|c| !c.idle).count() as u64;
            let mut active = conns.iter().filter(|c| !c.done && !c.idle).count();
            while active > 0 {
                let finished = conns.iter().filter(|c| c.done).count();
                check_deadline(deadline, "bulk", finished, conns.len())?;
                poll.poll(&mut events, Some(Duration::from_millis(100)))
                    .or_else(ignore_eintr)?;
                for ev in events.iter() {
                    let c = &mut conns[ev.token().0];
                    if c.idle {
                        check_idle(c)?;
                        continue;
                    }
                    if c.done {
                        continue;
                    }
                    if bulk_step(c, &pattern, &mut buf, total, window)? {
                        active -= 1;
                    }
                }
            }
            stats.secs = start.elapsed().as_secs_f64();
            stats.bytes = total * streams;
        }
    }
    Ok((stats, conns))
}

/// An event on an idle connection: the server may only have closed it,
/// which spoils the scenario.
fn check_idle(c: &mut Conn) -> io::Result<()> {
    let mut byte = [0u8; 1];
    match c.stream.read(&mut byte) {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("idle connection {} closed by the server", c.id),
        )),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("idle connection {} received unexpected bytes", c.id),
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(e) => Err(e),
    }
}

fn ignore_eintr(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(e)
    }
}

fn check_deadline(deadline: Instant, phase: &str, done: usize, of: usize) -> io::Result<()> {
    if Instant::now() > deadline {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out in {phase} ({done} of {of} connections finished)"),
        ));
    }
    Ok(())
}

/// A non-blocking connect has completed (`true`), is still in progress
/// (`false`), or failed (error).
fn finish_connect(c: &mut Conn) -> io::Result<bool> {
    if let Some(e) = c.stream.take_error()? {
        return Err(e);
    }
    match c.stream.peer_addr() {
        Ok(_) => {
            c.connected = true;
            c.stream.set_nodelay(true)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Message `seq` of connection `id`: id, seq, then pattern bytes.
fn fill_msg(c: &mut Conn, pattern: &Pattern) {
    let n = c.msg.len();
    c.msg[..8].copy_from_slice(&c.id.to_le_bytes());
    c.msg[8..16].copy_from_slice(&c.seq.to_le_bytes());
    c.msg[16..].copy_from_slice(pattern.slice(c.id, c.seq * n as u64, n - 16));
    c.seq += 1;
    c.sent = 0;
    c.recvd = 0;
}

/// Writes what is left of the message and reads what has come of its echo
/// (edge-triggered: until `WouldBlock`). Returns `true` once the whole echo
/// arrived and matched; then records its latency in `stats`.
fn pingpong_step(c: &mut Conn, stats: Option<&mut Stats>) -> io::Result<bool> {
    let n = c.msg.len();
    while (c.sent as usize) < n {
        match c.stream.write(&c.msg[c.sent as usize..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(w) => c.sent += w as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    while (c.recvd as usize) < n {
        let at = c.recvd as usize;
        match c.stream.read(&mut c.echo[at..]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("connection {} closed by the server mid-echo", c.id),
                ))
            }
            Ok(r) => c.recvd += r as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if c.echo != c.msg {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("connection {}: echo of message {} differs", c.id, c.seq - 1),
        ));
    }
    if let Some(stats) = stats {
        stats.roundtrips += 1;
        stats
            .latencies_ns
            .push(c.started.elapsed().as_nanos() as u64);
    }
    Ok(true)
}

/// Streams and verifies; returns `true` when this connection's last byte has
/// been echoed and checked.
fn bulk_step(
    c: &mut Conn,
    pattern: &Pattern,
    buf: &mut [u8],
    total: u64,
    window: u64,
) -> io::Result<bool> {
    loop {
        let mut progress = false;
        while c.sent < total && c.sent - c.recvd < window {
            let len = (total - c.sent)
                .min(window - (c.sent - c.recvd))
                .min(PATTERN_PERIOD as u64) as usize;
            match c.stream.write(pattern.slice(c.id, c.sent, len)) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(w) => {
                    c.sent += w as u64;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        while c.recvd < c.sent {
            let want = ((c.sent - c.recvd) as usize).min(buf.len());
            match c.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("connection {} closed by the server mid-stream", c.id),
                    ))
                }
                Ok(r) => {
                    let mut off = 0;
                    while off < r {
                        let len = (r - off).min(PATTERN_PERIOD);
                        if buf[off..off + len] != *pattern.slice(c.id, c.recvd, len) {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "connection {}: echoed bytes differ near offset {}",
                                    c.id, c.recvd
                                ),
                            ));
                        }
                        off += len;
                        c.recvd += len as u64;
                    }
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if c.recvd == total {
            c.done = true;
            return Ok(true);
        }
        if !progress {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::connect_order;

    #[test]
    fn active_connections_are_spread_among_the_idle_ones_the_last_at_the_end() {
        assert_eq!(connect_order(3, 0), vec![0, 1, 2]);
        let order = connect_order(10, 5000);
        assert_eq!(order.len(), 5010);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..5010).collect::<Vec<u64>>());
        let at: Vec<usize> = (0..10u64)
            .map(|a| order.iter().position(|&i| i == a).unwrap())
            .collect();
        assert_eq!(at, (1..=10).map(|k| k * 501 - 1).collect::<Vec<_>>());
        assert_eq!(connect_order(2, 1), vec![0, 2, 1]);
    }
}
