//! The benchmark driver: one command for the whole table and plot.
//!
//! ```sh
//! bash bench/setup.sh                                   # socat, strace, perf, valgrind (once per machine)
//! cargo run --release -p selectloop-bench --bin bench   # ~10 minutes on 2 cores; --quick for a ~1.5 minute smoke run
//! ```
//!
//! It builds the crate's `echo_server` and `port_forwarder` examples in
//! release, then, for every server, starts it, waits for its
//! `listening on` line, runs the scenarios with `loadgen`, and stops it.
//! The servers are interleaved (each round runs every server once, in a
//! rotated order) and every figure is the median of the rounds.
//!
//! Passes (`--pass NAME`, repeatable, runs some of them only):
//!
//! 1. **timing** (`--pin`, default `split`: server on CPU 0, client on CPU 1):
//!    pingpong 64 B with 1, 10, 100, 1,000 connections, bulk 1 × 64 MiB and
//!    10 × 16 MiB, and last pingpong with 2,000 connections (past select's
//!    FD_SETSIZE: where select stops); round trips/s, p50/p99, MiB/s, server CPU per MiB.
//! 2. **cost** (server and client pinned to the same CPU, so the machine is
//!    the bottleneck): server CPU time per round trip, pingpong 64 B with 1
//!    and 10 connections.
//! 3. **syscalls** (shorter, separate, so counting does not distort the
//!    timing): `perf stat -e raw_syscalls:sys_enter` (or `strace -c -f`)
//!    attached to the server around the measured part only.
//! 4. **forwarder** (when `socat` is installed): `port_forwarder` (poll and
//!    select) against `socat`, both forwarding to the same `echo_server`;
//!    bulk MiB/s, CPU per MiB, and pingpong p99 with 1,000 connections.
//! 5. **instructions**: user-space instructions per round trip under
//!    callgrind, 10 connections, a fixed number of round trips; counted from
//!    the end of the warm-up (`callgrind_control --instr=on -z`) to the last
//!    round trip (`callgrind_control -d`); then the same beside 5,000 idle
//!    connections; and where the crate's instructions go, by function.
//! 6. **idle**: 10 active connections beside 5,000 idle ones; round trips/s,
//!    p50/p99, server CPU per round trip (select cannot take them).
//! 7. **timers**: 10 active beside 10,000 idle connections, `echo_server`
//!    with and without `--idle-timeout` (a timer per connection, pushed back
//!    on every read): server CPU and instructions per round trip.
//! 8. **profile**: `perf record` of the poll backend and the poll floor.
//!
//! Server CPU time is read around the measured part from the kernel's
//! per-thread run time, `/proc/PID/task/TID/schedstat` (nanoseconds), summed
//! over the server's threads and child processes (socat forks one per
//! connection). `/proc/PID/stat`'s `utime+stime` is the same clock in 10 ms
//! ticks, too coarse for a 40 ms bulk run; it is the fallback.
//!
//! Writes `bench/results.md` (the tables) and `docs/bench-rtt.svg` (round
//! trips/s against connections, log x axis), and prints the tables.

use clap::{Parser, ValueEnum};
use selectloop_bench::raise_nofile_limit;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Runs selectloop's benchmark and writes bench/results.md and docs/bench-rtt.svg.
#[derive(Parser, Debug)]
struct Args {
    /// A ~1 minute smoke run: one round, short measurements
    #[arg(long)]
    quick: bool,
    /// Rounds of the timing and forwarder passes (median)
    #[arg(long)]
    rounds: Option<usize>,
    /// Rounds of the cost pass (median)
    #[arg(long)]
    cost_rounds: Option<usize>,
    /// Seconds of each pingpong measurement
    #[arg(long)]
    secs: Option<f64>,
    /// CPU pinning of the timing and forwarder passes: none, same (server and
    /// client on CPU 0), split (server on CPU 0, client on CPU 1)
    #[arg(long, value_enum, default_value = "split")]
    pin: Pin,
    /// Do not run `cargo build` for the crate's examples
    #[arg(long)]
    no_build: bool,
    /// Skip the `perf record` profiles of the crate's poll backend and the
    /// poll floor (written to the end of the results)
    #[arg(long)]
    no_profile: bool,
    /// Only the servers whose name contains this (repeatable)
    #[arg(long)]
    only: Vec<String>,
    /// Where to write the Markdown tables (default: bench/results.md)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where to write the plot (default: docs/bench-rtt.svg)
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Run only these passes (repeatable; default: all). A run of some
    /// passes prints its tables and writes files only with --out / --svg.
    #[arg(long = "pass", value_enum)]
    passes: Vec<PassName>,
    /// Instructions pass: measured round trips per connection (the run with
    /// twice as many is subtracted from it)
    #[arg(long)]
    instr_roundtrips: Option<u64>,
    /// Instructions pass: repetitions (median)
    #[arg(long)]
    instr_reps: Option<usize>,
}

/// The passes of a run, in the order they run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum PassName {
    /// Round trips/s, latency, bulk MiB/s (server and client on their own CPUs)
    Timing,
    /// Server CPU per round trip, server and client on one CPU
    Cost,
    /// System calls per round trip / per MiB
    Syscalls,
    /// port_forwarder against socat
    Forwarder,
    /// 2,000 connects in batches of 20 through a listen backlog of 5
    Churn,
    /// User-space instructions per round trip (callgrind)
    Instructions,
    /// 10 active connections beside 5,000 idle ones
    Idle,
    /// 10 active connections beside 10,000 idle ones holding idle timers
    Timers,
    /// perf record of the poll backend and floor
    Profile,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Pin {
    None,
    Same,
    Split,
}

impl Pin {
    /// CPUs for (server, client).
    fn cpus(self) -> (Option<&'static str>, Option<&'static str>) {
        match self {
            Pin::None => (None, None),
            Pin::Same => (Some("0"), Some("0")),
            Pin::Split => (Some("0"), Some("1")),
        }
    }
}

/// One load scenario.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Pingpong(usize),
    Bulk(usize, u64),
    /// Pingpong on the first count of connections, beside the second count of
    /// silent ones.
    Idle(usize, usize),
}

impl Scenario {
    fn label(self) -> String {
        match self {
            Scenario::Pingpong(n) => format!("pingpong 64 B × {n}"),
            Scenario::Bulk(n, m) => format!("bulk {n} × {m} MiB"),
            Scenario::Idle(n, idle) => {
                format!("pingpong 64 B × {n} + {} idle", fmt_int(idle as f64))
            }
        }
    }

    /// Connections the server holds, listener not counted.
    fn connections(self) -> usize {
        match self {
            Scenario::Pingpong(n) | Scenario::Bulk(n, _) => n,
            Scenario::Idle(n, idle) => n + idle,
        }
    }
}

/// Active and idle connections of the idle pass and of the timer pass.
const IDLE: Scenario = Scenario::Idle(10, 5000);
const TIMERS: Scenario = Scenario::Idle(10, 10_000);
/// The idle timeout the timer pass gives `echo_server --idle-timeout`: long
/// enough never to fire during a run (even under callgrind), so every idle
/// connection holds an armed timer and every read pushes one back.
const IDLE_TIMEOUT_SECS: &str = "3600";
/// select(2) cannot watch an fd of FD_SETSIZE (1024) or more.
const FD_SETSIZE: usize = 1024;

/// Pingpong connection counts. 2,000 is past select(2)'s FD_SETSIZE (1024):
/// the select servers fail it, which is the point where select stops.
const PINGPONG: [usize; 5] = [1, 10, 100, 1000, 2000];
const BULK: [(usize, u64); 2] = [(1, 64), (10, 16)];

/// How to start one server.
#[derive(Clone, Debug)]
struct ServerSpec {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    /// socat prints no `listening on` line: the driver picks the port and
    /// waits until it accepts connections.
    socat: bool,
    /// Watches its sockets with select(2), which cannot take an fd of
    /// FD_SETSIZE or more.
    uses_select: bool,
}

/// What one loadgen run measured.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// round trips/s or MiB/s
    rate: f64,
    p50_us: f64,
    p99_us: f64,
    /// server CPU ns per round trip or per MiB
    cpu_ns_per_unit: f64,
    /// the load generator's CPU ns per round trip or per MiB (where the
    /// kernel charges the sending side's share of a wake-up)
    client_cpu_ns_per_unit: f64,
    /// server syscalls per round trip (syscall pass only)
    syscalls_per_unit: f64,
    /// server user-space instructions per round trip (callgrind passes only)
    instr_per_unit: f64,
}

/// Samples by (pass, server, scenario).
type Results = BTreeMap<(&'static str, String, Scenario), Vec<Sample>>;

/// Paths and settings every pass needs.
struct Env {
    loadgen: PathBuf,
    log_dir: PathBuf,
    secs: f64,
    syscall_counter: Option<SyscallCounter>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum SyscallCounter {
    Perf,
    Strace,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("bench: error: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> io::Result<()> {
    let started = Instant::now();
    // before the run: the load average later counts the benchmark's own
    // threads (2,000 connections of thread_echo, 1,000 socat processes)
    let machine = machine_description();
    let root = workspace_root();
    let exe_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("cannot find the driver's directory"))?;
    let target_dir = exe_dir
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("cannot find the target directory"))?;
    let mut notes: Vec<String> = Vec::new();
    // the servers inherit the limit: 10,010 connections on each side of the
    // timer pass, 5,010 in the idle pass
    match raise_nofile_limit() {
        Ok(limit) if limit < TIMERS.connections() as u64 + 100 => notes.push(format!(
            "the fd limit is {limit}: the idle ({} connections) or timer ({}) scenarios may fail with EMFILE.",
            IDLE.connections(),
            TIMERS.connections()
        )),
        Ok(_) => {}
        Err(e) => eprintln!("bench: cannot raise the fd limit: {e}"),
    }

    if !args.no_build {
        eprintln!("bench: building the crate's examples (release)");
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(&root)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--release", "--example", "echo_server"]);
        if root.join("examples/port_forwarder.rs").exists() {
            cmd.args(["--example", "port_forwarder"]);
        }
        let status = cmd.status()?;
        if !status.success() {
            return Err(io::Error::other("cargo build of the examples failed"));
        }
        // `cargo run --bin bench` builds the driver only: the load
        // generator, the floors and the peers are built here too, so the
        // one command works on a fresh checkout.
        eprintln!("bench: building the load generator and the peer servers (release)");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target_dir)
            .args(["build", "--release", "-p", "selectloop-bench", "--bins"])
            .status()?;
        if !status.success() {
            return Err(io::Error::other(
                "cargo build of the benchmark's binaries failed",
            ));
        }
    }
    let examples = exe_dir.join("examples");
    let echo_server = examples.join("echo_server");
    let port_forwarder = examples.join("port_forwarder");
    let have_forwarder = port_forwarder.exists();
    let forwarder_wanted = args.passes.is_empty() || args.passes.contains(&PassName::Forwarder);
    if !have_forwarder && forwarder_wanted {
        notes.push(format!(
            "port_forwarder: {} is not built; forwarder scenarios skipped.",
            port_forwarder.display()
        ));
    }
    let have_socat = which("socat");
    if !have_socat && forwarder_wanted {
        notes.push(
            "socat is not installed (bench/setup.sh installs it); forwarder scenarios skipped."
                .into(),
        );
    }
    let syscall_counter = if perf_works() {
        Some(SyscallCounter::Perf)
    } else if which("strace") {
        Some(SyscallCounter::Strace)
    } else {
        if args.passes.is_empty() || args.passes.contains(&PassName::Syscalls) {
            notes.push(
                "neither perf (raw_syscalls tracepoint) nor strace is usable; syscall counts skipped."
                    .into(),
            );
        }
        None
    };
    let python = python_with_asyncore();
    if python.is_none() {
        notes.push("python3 with asyncore (Python ≤ 3.11) is not available; the asyncore server is skipped.".into());
    }

    let runs = |p: PassName| args.passes.is_empty() || args.passes.contains(&p);
    // echo_server arms an idle timer per connection by default (300 s); the
    // floors and mio have none: every echo_server runs with
    // `--idle-timeout 0` except the timer pass's "+ idle timers" rows
    let echo_spec = |name: &str, backend: &str| ServerSpec {
        uses_select: backend == "--select",
        ..spec(name, &echo_server, &[backend, "--idle-timeout", "0"])
    };
    notes.push(
        "echo_server and port_forwarder run with `--idle-timeout 0` (no timers; their default arms a 300 s idle timer \
         per connection), except the timer pass's \"+ idle timers\" rows."
            .into(),
    );
    let mut servers = vec![
        echo_spec("selectloop poll", "--poll"),
        echo_spec("selectloop select", "--select"),
        echo_spec("selectloop epoll", "--epoll"),
        spec("floor poll(2)", &exe_dir.join("floor_poll"), &[]),
        spec("floor select(2)", &exe_dir.join("floor_select"), &[]),
        spec("mio (epoll)", &exe_dir.join("mio_echo"), &[]),
        spec("thread per conn", &exe_dir.join("thread_echo"), &[]),
    ];
    if let Some(py) = &python {
        let script = root.join("bench/asyncore_echo.py");
        servers.push(ServerSpec {
            name: "Python asyncore".into(),
            program: py.clone(),
            args: vec![script.display().to_string()],
            socat: false,
            // asyncore.loop() uses select.select unless use_poll=True
            uses_select: true,
        });
    }
    if !args.only.is_empty() {
        servers.retain(|s| args.only.iter().any(|o| s.name.contains(o.as_str())));
    }
    if !echo_server.exists()
        && (servers.iter().any(|s| s.program == echo_server) || forwarder_wanted)
    {
        return Err(io::Error::other(format!(
            "{} is missing (run without --no-build)",
            echo_server.display()
        )));
    }

    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
    let cost_rounds = args.cost_rounds.unwrap_or(if args.quick { 1 } else { 5 });
    let secs = args.secs.unwrap_or(if args.quick { 0.3 } else { 2.0 });
    let log_dir = target_dir.join("bench-logs");
    std::fs::create_dir_all(&log_dir)?;
    let env = Env {
        loadgen: exe_dir.join("loadgen"),
        log_dir,
        secs,
        syscall_counter,
    };
    let bulk: Vec<(usize, u64)> = if args.quick {
        vec![(1, 16), (10, 4)]
    } else {
        BULK.to_vec()
    };
    let mut results: Results = BTreeMap::new();

    // Pass 1: timing.
    // 2,000 connections last: a select server may die of it (Python's does)
    let mut timing: Vec<Scenario> = PINGPONG
        .iter()
        .filter(|&&n| n <= 1000)
        .map(|&n| Scenario::Pingpong(n))
        .collect();
    timing.extend(bulk.iter().map(|&(n, m)| Scenario::Bulk(n, m)));
    timing.extend(
        PINGPONG
            .iter()
            .filter(|&&n| n > 1000)
            .map(|&n| Scenario::Pingpong(n)),
    );
    for round in 0..rounds {
        if !runs(PassName::Timing) {
            break;
        }
        for server in rotated(&servers, round) {
            eprintln!(
                "bench: timing round {}/{rounds}: {}",
                round + 1,
                server.name
            );
            run_server(
                &env,
                server,
                args.pin,
                &timing,
                "timing",
                false,
                None,
                &mut results,
                &mut notes,
            )?;
        }
    }
    // Pass 2: cost, pinned to one CPU.
    let cost = [
        Scenario::Pingpong(1),
        Scenario::Pingpong(10),
        Scenario::Pingpong(1000),
    ];
    for round in 0..cost_rounds {
        if !runs(PassName::Cost) {
            break;
        }
        for server in rotated(&servers, round) {
            eprintln!(
                "bench: cost round {}/{cost_rounds}: {}",
                round + 1,
                server.name
            );
            run_server(
                &env,
                server,
                Pin::Same,
                &cost,
                "cost",
                false,
                None,
                &mut results,
                &mut notes,
            )?;
        }
    }
    // Pass 3: syscalls, one shorter round.
    if env.syscall_counter.is_some() && runs(PassName::Syscalls) {
        let short = Env {
            secs: (secs / 2.0).max(0.3),
            ..env_clone(&env)
        };
        let mut sys = vec![
            Scenario::Pingpong(1),
            Scenario::Pingpong(10),
            Scenario::Pingpong(100),
        ];
        sys.extend(bulk.iter().map(|&(n, m)| Scenario::Bulk(n, m)));
        for server in &servers {
            eprintln!("bench: syscall pass: {}", server.name);
            run_server(
                &short,
                server,
                args.pin,
                &sys,
                "syscalls",
                true,
                None,
                &mut results,
                &mut notes,
            )?;
        }
    }
    // Pass 4: forwarders.
    let mut forwarders: Vec<ServerSpec> = Vec::new();
    if have_forwarder && have_socat && runs(PassName::Forwarder) {
        forwarders.push(spec(
            "port_forwarder poll",
            &port_forwarder,
            &["--poll", "--backlog", "128", "--idle-timeout", "0"],
        ));
        forwarders.push(spec(
            "port_forwarder select",
            &port_forwarder,
            &["--select", "--backlog", "128", "--idle-timeout", "0"],
        ));
        forwarders.push(spec(
            "port_forwarder epoll",
            &port_forwarder,
            &["--epoll", "--backlog", "128", "--idle-timeout", "0"],
        ));
        forwarders.push(ServerSpec {
            name: "socat".into(),
            program: "socat".into(),
            args: Vec::new(),
            socat: true,
            uses_select: false,
        });
        let upstream_spec = echo_spec("echo upstream", "--poll");
        let (mut upstream, upstream_addr, _) = start_server(&env, &upstream_spec, None, None)?;
        let mut fwd_scen: Vec<Scenario> = bulk.iter().map(|&(n, m)| Scenario::Bulk(n, m)).collect();
        fwd_scen.push(Scenario::Pingpong(1000));
        for round in 0..rounds {
            for fwd in rotated(&forwarders, round) {
                eprintln!(
                    "bench: forwarder round {}/{rounds}: {}",
                    round + 1,
                    fwd.name
                );
                // 1,000 forwarded connections are 2,000 fds: past FD_SETSIZE
                let scen: Vec<Scenario> = fwd_scen
                    .iter()
                    .copied()
                    .filter(|s| !(fwd.uses_select && matches!(s, Scenario::Pingpong(1000))))
                    .collect();
                run_server(
                    &env,
                    fwd,
                    args.pin,
                    &scen,
                    "forwarder",
                    false,
                    Some(upstream_addr.as_str()),
                    &mut results,
                    &mut notes,
                )?;
            }
        }
        stop(&mut upstream);
        notes.push("port_forwarder select: no 1,000-connection run (2,000 fds exceed select's FD_SETSIZE of 1024; the poll and epoll backends have no such limit).".into());
    }

    // Pass 4b: connection churn through a listen backlog of 5.
    let mut churn: Vec<ChurnRow> = Vec::new();
    if have_forwarder && runs(PassName::Churn) {
        let mut specs = vec![
            spec(
                "port_forwarder poll (backlog 5, the default)",
                &port_forwarder,
                &["--poll", "--idle-timeout", "0"],
            ),
            spec(
                "port_forwarder epoll (backlog 5, the default)",
                &port_forwarder,
                &["--epoll", "--idle-timeout", "0"],
            ),
            spec(
                "port_forwarder poll --backlog 128",
                &port_forwarder,
                &["--poll", "--backlog", "128", "--idle-timeout", "0"],
            ),
        ];
        if have_socat {
            specs.push(ServerSpec {
                name: "socat (fork, backlog=5)".into(),
                program: "socat".into(),
                args: vec!["backlog=5".into()],
                socat: true,
                uses_select: false,
            });
        }
        if which("python3") {
            specs.push(spec(
                ACCEPT_LOOP,
                Path::new("python3"),
                &[&root.join("bench/accept_loop.py").display().to_string()],
            ));
        }
        let upstream_spec = echo_spec("echo upstream", "--poll");
        let (mut upstream, upstream_addr, _) = start_server(&env, &upstream_spec, None, None)?;
        for round in 0..rounds {
            for s in rotated(&specs, round) {
                eprintln!("bench: churn round {}/{rounds}: {}", round + 1, s.name);
                let up = (s.name != ACCEPT_LOOP).then_some(upstream_addr.as_str());
                match churn_run(&env, s, up) {
                    Ok(r) => match churn.iter_mut().find(|c| c.name == s.name) {
                        Some(row) => row.runs.push(r),
                        None => churn.push(ChurnRow {
                            name: s.name.clone(),
                            runs: vec![r],
                        }),
                    },
                    Err(e) => notes.push(format!("{} (churn): failed: {e}", s.name)),
                }
            }
        }
        stop(&mut upstream);
    }

    // Pass 5: user-space instructions per round trip, under callgrind.
    let instr_rt = args
        .instr_roundtrips
        .unwrap_or(if args.quick { 1000 } else { 2000 })
        .max(1);
    let instr_reps = args.instr_reps.unwrap_or(if args.quick { 1 } else { 3 });
    let have_valgrind = which("valgrind");
    if !have_valgrind && (runs(PassName::Instructions) || runs(PassName::Timers)) {
        notes.push(
            "valgrind is not installed (bench/setup.sh installs it); instructions per round trip skipped."
                .into(),
        );
    }
    if runs(PassName::Instructions) && have_valgrind {
        // one thread, one process: thread_echo's and Python's counts would
        // measure something else
        let counted: Vec<ServerSpec> = servers
            .iter()
            .filter(|s| !s.name.contains("thread") && !s.name.contains("asyncore"))
            .cloned()
            .collect();
        let scenario = Scenario::Pingpong(10);
        for rep in 0..instr_reps {
            for server in rotated(&counted, rep) {
                eprintln!(
                    "bench: instructions {}/{instr_reps}: {} ({instr_rt} round trips per connection)",
                    rep + 1,
                    server.name,
                );
                record_instructions(
                    &env,
                    server,
                    scenario,
                    instr_rt,
                    "instructions",
                    &mut results,
                    &mut notes,
                );
            }
        }
        // the same beside 5,000 idle connections, once: what an idle channel
        // costs in user space per round trip
        for server in counted.iter().filter(|s| !uses_select(s)) {
            let per_conn = (instr_rt / 10).max(1);
            eprintln!(
                "bench: instructions: {} / {} ({per_conn} round trips per active connection)",
                server.name,
                IDLE.label()
            );
            record_instructions(
                &env,
                server,
                IDLE,
                per_conn,
                "instructions",
                &mut results,
                &mut notes,
            );
        }
    }
    // where the crate's instructions go (the last repetition's dumps)
    let mut instr_profiles = String::new();
    if runs(PassName::Instructions) && have_valgrind {
        let shown = [
            (Scenario::Pingpong(10), instr_rt * 10, 14),
            (IDLE, (instr_rt / 10).max(1) * 10, 8),
        ];
        for (scenario, roundtrips, top) in shown {
            for server in servers.iter().filter(|s| s.name.starts_with("selectloop")) {
                match annotate(&env, server, scenario, roundtrips, top) {
                    Ok(text) if !text.is_empty() => {
                        let _ = writeln!(
                            instr_profiles,
                            "\n### {} / {}\n\n```text\n{text}```",
                            server.name,
                            scenario.label()
                        );
                    }
                    Ok(_) => {}
                    Err(e) => notes.push(format!("callgrind_annotate of {}: {e}", server.name)),
                }
            }
        }
    }
    // Pass 6: idle connections beside active ones.
    if runs(PassName::Idle) {
        for round in 0..rounds {
            for server in rotated(&servers, round) {
                if uses_select(server) {
                    continue;
                }
                eprintln!(
                    "bench: idle round {}/{rounds}: {} / {}",
                    round + 1,
                    server.name,
                    IDLE.label()
                );
                run_server(
                    &env,
                    server,
                    args.pin,
                    &[IDLE],
                    "idle",
                    false,
                    None,
                    &mut results,
                    &mut notes,
                )?;
            }
        }
        for server in servers.iter().filter(|s| uses_select(s)) {
            notes.push(format!(
                "{}: no idle-connection run ({} connections exceed select's FD_SETSIZE of {FD_SETSIZE}).",
                server.name,
                fmt_int(IDLE.connections() as f64)
            ));
        }
    }
    // Pass 7: idle timers, each pushed back on every read.
    let mut timer_rows: Vec<(ServerSpec, ServerSpec)> = Vec::new();
    if runs(PassName::Timers) {
        for b in ["poll", "epoll"] {
            let name = format!("selectloop {b}");
            if !args.only.is_empty() && !args.only.iter().any(|o| name.contains(o.as_str())) {
                continue;
            }
            let flag = format!("--{b}");
            timer_rows.push((
                echo_spec(&format!("selectloop {b}"), &flag),
                spec(
                    &format!("selectloop {b} + idle timers"),
                    &echo_server,
                    &[&flag, "--idle-timeout", IDLE_TIMEOUT_SECS],
                ),
            ));
        }
        let timed: Vec<ServerSpec> = timer_rows
            .iter()
            .flat_map(|(a, b)| [a.clone(), b.clone()])
            .collect();
        for round in 0..cost_rounds.min(3) {
            for server in rotated(&timed, round) {
                eprintln!(
                    "bench: timers round {}: {} / {}",
                    round + 1,
                    server.name,
                    TIMERS.label()
                );
                run_server(
                    &env,
                    server,
                    Pin::Same,
                    &[TIMERS],
                    "timers",
                    false,
                    None,
                    &mut results,
                    &mut notes,
                )?;
            }
        }
        if have_valgrind {
            // every iteration walks 10,000 idle channels on poll: fewer round trips
            let per_conn = (instr_rt / 10).max(1);
            // one repetition: each run's warm-up (10,010 connections) is long under callgrind
            for rep in 0..1 {
                for server in rotated(&timed, rep) {
                    eprintln!(
                        "bench: timers instructions {}: {} / {}",
                        rep + 1,
                        server.name,
                        TIMERS.label()
                    );
                    record_instructions(
                        &env,
                        server,
                        TIMERS,
                        per_conn,
                        "timers instructions",
                        &mut results,
                        &mut notes,
                    );
                }
            }
        }
    }

    // Pass 8: where the time goes, perf record of the poll backend and floor.
    let mut profiles = String::new();
    if !args.no_profile
        && runs(PassName::Profile)
        && env.syscall_counter == Some(SyscallCounter::Perf)
    {
        let profiled: Vec<&ServerSpec> = servers
            .iter()
            .filter(|s| s.name == REF || s.name == "floor poll(2)")
            .collect();
        let scen = [
            (Scenario::Pingpong(1), Pin::Same),
            (Scenario::Bulk(bulk[0].0, bulk[0].1), args.pin),
        ];
        for (scenario, pin) in scen {
            for server in &profiled {
                eprintln!("bench: profile: {} / {}", server.name, scenario.label());
                match profile(&env, server, scenario, pin, None) {
                    Ok(text) => {
                        let _ = writeln!(
                            profiles,
                            "\n### {} / {} ({})\n\n```text\n{}```",
                            server.name,
                            scenario.label(),
                            match pin {
                                Pin::Same => "server and client on one CPU",
                                Pin::Split => "server on CPU 0, client on CPU 1",
                                Pin::None => "not pinned",
                            },
                            text
                        );
                    }
                    Err(e) => notes.push(format!("profile of {}: {e}", server.name)),
                }
            }
        }
        if let Some(fwd) = forwarders.iter().find(|f| f.name == "port_forwarder poll") {
            let scenario = Scenario::Bulk(bulk[0].0, bulk[0].1);
            eprintln!("bench: profile: {} / {}", fwd.name, scenario.label());
            let upstream_spec = echo_spec("echo upstream", "--poll");
            let profiled = start_server(&env, &upstream_spec, None, None).and_then(
                |(mut upstream, upstream_addr, _)| {
                    let r = profile(&env, fwd, scenario, args.pin, Some(&upstream_addr));
                    stop(&mut upstream);
                    r
                },
            );
            match profiled {
                Ok(text) => {
                    let _ = writeln!(
                        profiles,
                        "\n### {} / {} (forwarding to `echo_server --poll`)\n\n```text\n{}```",
                        fwd.name,
                        scenario.label(),
                        text
                    );
                }
                Err(e) => notes.push(format!("profile of {}: {e}", fwd.name)),
            }
        }
    }

    let elapsed = started.elapsed().as_secs_f64();
    let given: Vec<String> = std::env::args().skip(1).collect();
    let command = if given.is_empty() {
        "cargo run --release -p selectloop-bench --bin bench".to_string()
    } else {
        format!(
            "cargo run --release -p selectloop-bench --bin bench -- {}",
            given.join(" ")
        )
    };
    let ran: Vec<PassName> = PassName::value_variants()
        .iter()
        .copied()
        .filter(|&p| runs(p))
        .collect();
    let partial = !args.passes.is_empty();
    let md = render_markdown(&Report {
        results: &results,
        servers: &servers,
        forwarders: &forwarders,
        churn: &churn,
        timer_rows: &timer_rows,
        bulk: &bulk,
        notes: &notes,
        machine: &machine,
        command: &command,
        pin: args.pin,
        rounds,
        cost_rounds,
        secs,
        elapsed,
        ran: &ran,
        partial,
        instr_rt,
        instr_reps,
    });
    let md = if instr_profiles.is_empty() {
        md
    } else {
        format!(
            "{md}\n## Where the instructions go\n\nThe instructions pass's last dump of each of the crate's \
             servers: user-space instructions per round trip by function, self cost only \
             (`callgrind_annotate --inclusive=no`; inlined code counts in its caller).\n{instr_profiles}"
        )
    };
    let md = if profiles.is_empty() {
        md
    } else {
        format!(
            "{md}\n## Where the time goes\n\n`perf record -g -p SERVER` during one run; the share of the \
             server's samples by binary, then its hottest symbols (`perf report --no-children --sort dso,sym`).\n{profiles}"
        )
    };
    print!("{md}");
    // a run of some passes only must not overwrite the full run's files
    let out = match (&args.out, partial) {
        (Some(o), _) => Some(o.clone()),
        (None, false) => Some(root.join("bench/results.md")),
        (None, true) => None,
    };
    if let Some(out) = &out {
        std::fs::write(out, &md)?;
        eprintln!("bench: wrote {}", out.display());
    }
    let svg_path = match (&args.svg, partial) {
        (Some(o), _) => Some(o.clone()),
        (None, false) => Some(root.join("docs/bench-rtt.svg")),
        (None, true) => None,
    };
    if let Some(svg_path) = &svg_path {
        if let Some(dir) = svg_path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(svg_path, render_svg(&results, &servers))?;
        eprintln!("bench: wrote {}", svg_path.display());
    }
    eprintln!("bench: done in {elapsed:.0} s");
    Ok(())
}

fn env_clone(env: &Env) -> Env {
    Env {
        loadgen: env.loadgen.clone(),
        log_dir: env.log_dir.clone(),
        secs: env.secs,
        syscall_counter: env.syscall_counter,
    }
}

fn spec(name: &str, program: &Path, args: &[&str]) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        program: program.to_path_buf(),
        args: args.iter().map(|s| s.to_string()).collect(),
        socat: false,
        uses_select: args.contains(&"--select")
            || program.file_name().is_some_and(|f| f == "floor_select"),
    }
}

fn rotated<T>(items: &[T], by: usize) -> impl Iterator<Item = &T> {
    let n = items.len().max(1);
    (0..items.len()).map(move |i| &items[(i + by) % n])
}

/// The repository root (the parent of this crate's directory).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `perf stat` can count the raw_syscalls tracepoint here.
fn perf_works() -> bool {
    Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stderr).contains("raw_syscalls:sys_enter")
                && !String::from_utf8_lossy(&o.stderr).contains("not supported")
        })
        .unwrap_or(false)
}

fn python_with_asyncore() -> Option<PathBuf> {
    let ok = Command::new("python3")
        .args(["-W", "ignore", "-c", "import asyncore"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| PathBuf::from("python3"))
}

/// Lines of a child's stdout, read on a thread so waits can time out.
fn line_reader(stdout: impl io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
    rx
}

/// Waits for a line starting with `prefix`.
fn wait_line(rx: &Receiver<String>, prefix: &str, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return Ok(line),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no `{prefix}` line within {timeout:?}"),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the process exited before its `{prefix}` line"),
                ))
            }
        }
    }
}

/// A command, under `taskset -c CPU` when pinned.
fn pinned(cpu: Option<&str>, program: &Path) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpu]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Starts a server; returns it, its address and its stdout lines.
fn start_server(
    env: &Env,
    server: &ServerSpec,
    cpu: Option<&str>,
    upstream: Option<&str>,
) -> io::Result<(Child, String, Option<Receiver<String>>)> {
    let log = std::fs::File::create(env.log_dir.join(format!(
        "{}.log",
        server.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )))?;
    let mut cmd = pinned(cpu, &server.program);
    cmd.env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::from(log));
    if server.socat {
        // socat's args are its TCP-LISTEN options (default: backlog=128)
        let port = free_port()?;
        let up = upstream.unwrap_or("127.0.0.1:9");
        let opts = if server.args.is_empty() {
            "backlog=128".to_string()
        } else {
            server.args.join(",")
        };
        cmd.arg(format!(
            "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,{opts}"
        ))
        .arg(format!("TCP:{up}"))
        .stdout(Stdio::null());
        let child = cmd.spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other("socat did not start listening"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        return Ok((child, addr, None));
    }
    cmd.args(&server.args);
    if let Some(up) = upstream {
        let (ip, port) = up.rsplit_once(':').unwrap_or((up, "80"));
        cmd.args(["-l", "127.0.0.1", "-p", "0", "-r", ip, "-P", port]);
    } else {
        cmd.args(["--bind", "127.0.0.1:0"]);
    }
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let rx = line_reader(stdout);
    // valgrind takes a few seconds to start on a busy machine
    let line = match wait_line(&rx, "listening on ", Duration::from_secs(60)) {
        Ok(l) => l,
        Err(e) => {
            stop(&mut child);
            return Err(io::Error::other(format!("{}: {e}", server.name)));
        }
    };
    let addr = line.trim_start_matches("listening on ").trim().to_string();
    Ok((child, addr, Some(rx)))
}

/// The churn pass's reference server (`bench/accept_loop.py`).
const ACCEPT_LOOP: &str = "accept-and-close loop (Python, backlog 5, no forwarding)";

/// Connects made in one churn run, in batches of [`CHURN_BATCH`].
const CHURN_CONNECTS: usize = 2000;
const CHURN_BATCH: usize = 20;

/// One churn run: connects slower than 500 ms, failed connects, the
/// slowest connect in ms.
#[derive(Clone, Copy, Debug)]
struct ChurnRun {
    slow: usize,
    failed: usize,
    worst_ms: f64,
}

/// A server's churn runs.
struct ChurnRow {
    name: String,
    runs: Vec<ChurnRun>,
}

/// Starts `server` (forwarding to `upstream`, if given), runs the load
/// generator's churn mode against it, stops it.
fn churn_run(env: &Env, server: &ServerSpec, upstream: Option<&str>) -> io::Result<ChurnRun> {
    let (mut child, addr, _lines) = start_server(env, server, None, upstream)?;
    let out = Command::new(&env.loadgen)
        .args(["--addr", &addr, "--mode", "churn", "--timeout", "120"])
        .args(["--conns", &CHURN_CONNECTS.to_string()])
        .args(["--batch", &CHURN_BATCH.to_string()])
        .stdin(Stdio::null())
        .output();
    stop(&mut child);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("result mode=churn"))
        .ok_or_else(|| {
            io::Error::other(format!(
                "loadgen: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })?;
    let field = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    Ok(ChurnRun {
        slow: field("slow") as usize,
        failed: field("failed") as usize,
        worst_ms: field("worst_ms"),
    })
}

fn free_port() -> io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `server`, runs `scenarios` against it, stops it.
#[allow(clippy::too_many_arguments)]
fn run_server(
    env: &Env,
    server: &ServerSpec,
    pin: Pin,
    scenarios: &[Scenario],
    pass: &'static str,
    count_syscalls: bool,
    upstream: Option<&str>,
    results: &mut Results,
    notes: &mut Vec<String>,
) -> io::Result<()> {
    let (server_cpu, client_cpu) = pin.cpus();
    let (mut child, addr, _lines) = match start_server(env, server, server_cpu, upstream) {
        Ok(s) => s,
        Err(e) => {
            let note = format!(
                "{}: cannot start ({e}); skipped in the {pass} pass.",
                server.name
            );
            eprintln!("bench: {note}");
            notes.push(note);
            return Ok(());
        }
    };
    for &scenario in scenarios {
        match measure(env, child.id(), &addr, scenario, client_cpu, count_syscalls) {
            Ok(sample) => results
                .entry((pass, server.name.clone(), scenario))
                .or_default()
                .push(sample),
            Err(e) => {
                let key = format!("{} / {} ({pass}): failed", server.name, scenario.label());
                eprintln!("bench: {key}: {e}");
                // one note per server and scenario, however many rounds failed
                if !notes.iter().any(|n| n.starts_with(&key)) {
                    notes.push(format!("{key}: {e}"));
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let note = format!("{}: exited ({status}) during the {pass} pass", server.name);
            if !notes.iter().any(|n| n.starts_with(&note)) {
                notes.push(format!("{note}, after {}.", scenario.label()));
            }
            return Ok(());
        }
    }
    stop(&mut child);
    Ok(())
}

/// One loadgen run against a running server, with the server's CPU time
/// (and syscalls) read around the measured part.
fn measure(
    env: &Env,
    server_pid: u32,
    addr: &str,
    scenario: Scenario,
    client_cpu: Option<&str>,
    count_syscalls: bool,
) -> io::Result<Sample> {
    let mut cmd = pinned(client_cpu, &env.loadgen);
    cmd.args(["--addr", addr, "--wait-go"]);
    let (units_name, conns) = match scenario {
        Scenario::Pingpong(n) => {
            cmd.args(["--mode", "pingpong", "--size", "64"])
                .args(["--secs", &format!("{}", env.secs)]);
            ("roundtrips", n)
        }
        Scenario::Bulk(n, m) => {
            cmd.args(["--mode", "bulk", "--mib", &m.to_string()]);
            ("bytes", n)
        }
        Scenario::Idle(n, idle) => {
            cmd.args(["--mode", "pingpong", "--size", "64"])
                .args(["--secs", &format!("{}", env.secs)])
                .args(["--idle", &idle.to_string()]);
            ("roundtrips", n)
        }
    };
    cmd.args(["--conns", &conns.to_string()]);
    // one client thread per CPU it may use
    if client_cpu.is_none() && conns >= 100 {
        cmd.args(["--threads", "2"]);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut client = cmd.spawn()?;
    let client_pid = client.id();
    let mut stdin = client
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?;
    let stdout = client
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let stderr = client.stderr.take();
    let rx = line_reader(stdout);
    let result = (|| -> io::Result<Sample> {
        wait_line(&rx, "ready", Duration::from_secs(120))?;
        let mut counter = match (count_syscalls, env.syscall_counter) {
            (true, Some(kind)) => Some(start_counter(kind, server_pid)?),
            _ => None,
        };
        let cpu0 = tree_cpu(server_pid);
        let client0 = tree_cpu(client_pid);
        send_line(&mut stdin, "go")?;
        let line = wait_line(&rx, "result ", Duration::from_secs(300));
        let cpu1 = tree_cpu(server_pid);
        let client1 = tree_cpu(client_pid);
        let syscalls = counter.as_mut().map(stop_counter).transpose()?;
        let line = line?;
        let field = |k: &str| -> f64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let (rate, units) = match scenario {
            Scenario::Pingpong(_) | Scenario::Idle(..) => (field("rtt_per_s"), field(units_name)),
            Scenario::Bulk(..) => (field("mib_per_s"), field(units_name) / (1024.0 * 1024.0)),
        };
        let cpu = cpu_delta(&cpu0, &cpu1) as f64;
        let client_cpu = cpu_delta(&client0, &client1) as f64;
        let per_unit = |ns: f64| if units > 0.0 { ns / units } else { 0.0 };
        Ok(Sample {
            rate,
            p50_us: field("p50_us"),
            p99_us: field("p99_us"),
            cpu_ns_per_unit: per_unit(cpu),
            client_cpu_ns_per_unit: per_unit(client_cpu),
            syscalls_per_unit: match syscalls {
                Some(n) if units > 0.0 => n as f64 / units,
                _ => 0.0,
            },
            instr_per_unit: 0.0,
        })
    })();
    let _ = send_line(&mut stdin, "quit");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.try_wait()? {
            Some(_) => break,
            None if Instant::now() > deadline => {
                stop(&mut client);
                break;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    match result {
        Ok(s) => Ok(s),
        Err(e) => {
            let mut msg = String::new();
            if let Some(mut err) = stderr {
                let _ = io::Read::read_to_string(&mut err, &mut msg);
            }
            let msg = msg.trim().trim_start_matches("error: loadgen: ");
            if msg.is_empty() {
                Err(e)
            } else {
                Err(io::Error::other(format!("loadgen: {msg}")))
            }
        }
    }
}

/// User-space instructions per round trip of `server` in `scenario`
/// (`per_conn` round trips on each active connection), recorded under
/// `pass`; a failure becomes a note.
fn record_instructions(
    env: &Env,
    server: &ServerSpec,
    scenario: Scenario,
    per_conn: u64,
    pass: &'static str,
    results: &mut Results,
    notes: &mut Vec<String>,
) {
    match callgrind_per_roundtrip(env, server, scenario, per_conn) {
        Ok(x) => {
            eprintln!("bench:   {x:.0} instructions per round trip");
            results
                .entry((pass, server.name.clone(), scenario))
                .or_default()
                .push(Sample {
                    instr_per_unit: x,
                    ..Sample::default()
                });
        }
        Err(e) => {
            let key = format!("{} / {} ({pass}): failed", server.name, scenario.label());
            eprintln!("bench: {key}: {e}");
            if !notes.iter().any(|n| n.starts_with(&key)) {
                notes.push(format!("{key}: {e}"));
            }
        }
    }
}

/// Runs the server under callgrind (server and client on CPU 0, which makes
/// the batching of round trips into loop iterations, and so the count,
/// repeat), lets the client connect and warm up, zeroes the counters with
/// `callgrind_control -z`, lets the client serve `per_conn` round trips per
/// active connection, dumps the counters with `callgrind_control -d` and
/// returns the dumped `Ir` (user-space instructions) per round trip: only
/// the measured part is counted, start-up, accepts and warm-up are not.
fn callgrind_per_roundtrip(
    env: &Env,
    server: &ServerSpec,
    scenario: Scenario,
    per_conn: u64,
) -> io::Result<f64> {
    let (active, idle) = match scenario {
        Scenario::Pingpong(n) => (n, 0),
        Scenario::Idle(n, idle) => (n, idle),
        Scenario::Bulk(..) => return Err(io::Error::other("callgrind counts pingpong only")),
    };
    let out = callgrind_file(env, server, scenario);
    // callgrind_control -d writes OUT.1
    let dump = PathBuf::from(format!("{}.1", out.display()));
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&dump);
    let mut args = vec![
        "--tool=callgrind".to_string(),
        format!("--callgrind-out-file={}", out.display()),
        // no instrumentation (so 5 to 10 times faster) until the warm-up is over
        "--instr-atstart=no".into(),
    ];
    args.push(server.program.display().to_string());
    args.extend(server.args.iter().cloned());
    let under_valgrind = ServerSpec {
        name: server.name.clone(),
        program: "valgrind".into(),
        args,
        socat: false,
        uses_select: server.uses_select,
    };
    let (mut child, addr, _lines) = start_server(env, &under_valgrind, Some("0"), None)?;
    let pid = child.id();
    let mut client = pinned(Some("0"), &env.loadgen)
        .args(["--addr", &addr, "--mode", "pingpong", "--size", "64"])
        .args(["--conns", &active.to_string(), "--idle", &idle.to_string()])
        .args(["--roundtrips", &per_conn.to_string(), "--timeout", "900"])
        .arg("--wait-go")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = client
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?;
    let rx = line_reader(
        client
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?,
    );
    let stderr = client.stderr.take();
    let measured = (|| -> io::Result<String> {
        wait_line(&rx, "ready", Duration::from_secs(900))?;
        callgrind_control("--instr=on", pid)?;
        callgrind_control("-z", pid)?;
        send_line(&mut stdin, "go")?;
        let line = wait_line(&rx, "result ", Duration::from_secs(900))?;
        callgrind_control("-d", pid)?;
        Ok(line)
    })();
    let _ = send_line(&mut stdin, "quit");
    drop(stdin);
    let _ = client.wait();
    terminate(&mut child, Duration::from_secs(60));
    let line = match measured {
        Ok(l) => l,
        Err(e) => {
            let mut msg = String::new();
            if let Some(mut err) = stderr {
                let _ = io::Read::read_to_string(&mut err, &mut msg);
            }
            let msg = msg.trim().trim_start_matches("error: loadgen: ");
            return Err(if msg.is_empty() {
                e
            } else {
                io::Error::other(format!("{e}; loadgen: {msg}"))
            });
        }
    };
    let expected = per_conn * active as u64;
    let served = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("roundtrips="))
        .and_then(|v| v.parse::<u64>().ok());
    if served != Some(expected) {
        return Err(io::Error::other(format!(
            "loadgen served {served:?} round trips, not {expected}"
        )));
    }
    let text = std::fs::read_to_string(&dump)
        .map_err(|e| io::Error::other(format!("no callgrind dump {}: {e}", dump.display())))?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or_else(|| io::Error::other(format!("no totals line in {}", dump.display())))?;
    Ok(total as f64 / expected as f64)
}

/// Where callgrind writes a server's counts for a scenario (the dump of the
/// measured part is this name + `.1`).
fn callgrind_file(env: &Env, server: &ServerSpec, scenario: Scenario) -> PathBuf {
    let name = format!("callgrind-{}-{}.out", server.name, scenario.label());
    env.log_dir.join(name.replace(
        |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
        "_",
    ))
}

/// The `top` functions of a server's last callgrind dump for `scenario` by
/// self cost, in instructions per round trip (`roundtrips` in the dump).
fn annotate(
    env: &Env,
    server: &ServerSpec,
    scenario: Scenario,
    roundtrips: u64,
    top: usize,
) -> io::Result<String> {
    let dump = PathBuf::from(format!(
        "{}.1",
        callgrind_file(env, server, scenario).display()
    ));
    if !dump.exists() {
        return Ok(String::new());
    }
    let out = Command::new("callgrind_annotate")
        .args(["--inclusive=no", "--threshold=100", "--auto=no"])
        .arg(&dump)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    // "   1,620,000 (10.56%)  FILE:FUNCTION [OBJECT]"
    let mut by_fn: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let Some((share, place)) = rest.trim().split_once(')') else {
            continue;
        };
        // the frames below the loop (main, lang_start) show 100 %: skip them
        if share.contains("100.0") {
            continue;
        }
        let place = place.trim();
        let place = place.split(" [").next().unwrap_or(place);
        let function = place.split_once(':').map(|(_, f)| f).unwrap_or(place);
        *by_fn.entry(function.to_string()).or_default() += count;
    }
    let mut rows: Vec<(String, u64)> = by_fn.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let per = |n: u64| n as f64 / roundtrips.max(1) as f64;
    let mut text = format!("{:>7.1}  total\n", per(total));
    for (function, n) in rows.into_iter().take(top) {
        let _ = writeln!(text, "{:>7.1}  {function}", per(n));
    }
    Ok(text)
}

/// `callgrind_control OPTION PID` (`--instr=on` start counting, `-z` zero
/// the counters, `-d` dump them).
fn callgrind_control(option: &str, pid: u32) -> io::Result<()> {
    let out = Command::new("callgrind_control")
        .args([option, &pid.to_string()])
        .stdin(Stdio::null())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("OK") {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "callgrind_control {option} {pid} failed: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// SIGTERM, then SIGKILL if the process is still there after `grace`.
fn terminate(child: &mut Child, grace: Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => break,
        }
    }
    stop(child);
}

/// The server watches its sockets with select(2), which cannot take an fd of
/// FD_SETSIZE or more.
fn uses_select(server: &ServerSpec) -> bool {
    server.uses_select
}

fn send_line(stdin: &mut ChildStdin, line: &str) -> io::Result<()> {
    stdin.write_all(line.as_bytes())?;
    stdin.write_all(b"\n")?;
    stdin.flush()
}

/// The server and its descendants (socat forks per connection).
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                if let Some(ppid) = stat_fields(&stat).and_then(|f| f.get(1)?.parse().ok()) {
                    parents.push((p, ppid));
                }
            }
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// Fields of /proc/PID/stat after the `(comm)`: state, ppid, ...
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// CPU time (ns) of every thread of a process tree, by (pid, tid): from
/// per-thread schedstat, or /proc/PID/stat utime+stime (10 ms ticks) where
/// schedstat is missing.
type CpuSnapshot = BTreeMap<(u32, u32), u64>;

fn tree_cpu(pid: u32) -> CpuSnapshot {
    let mut snap = CpuSnapshot::new();
    for p in process_tree(pid) {
        let mut found = false;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                    if let Some(ns) = s
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                    {
                        snap.insert((p, tid), ns);
                        found = true;
                    }
                }
            }
        }
        if !found {
            // utime + stime in clock ticks (fields 14 and 15; 12 and 13 after comm)
            let ticks = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let f = stat_fields(&s)?;
                    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
                })
                .unwrap_or(0);
            snap.insert((p, 0), ticks * 10_000_000);
        }
    }
    snap
}

/// CPU time spent between two snapshots by the threads alive at the second
/// (a thread that ended in between, e.g. one of a previous run's
/// connections, must not make the sum go down).
fn cpu_delta(before: &CpuSnapshot, after: &CpuSnapshot) -> u64 {
    after
        .iter()
        .map(|(k, ns)| ns.saturating_sub(before.get(k).copied().unwrap_or(0)))
        .sum()
}

/// `perf record` of one server during one scenario; returns the top of
/// `perf report` (share by binary, then by symbol).
fn profile(
    env: &Env,
    server: &ServerSpec,
    scenario: Scenario,
    pin: Pin,
    upstream: Option<&str>,
) -> io::Result<String> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let (server_cpu, client_cpu) = pin.cpus();
    let (mut child, addr, _lines) = start_server(env, server, server_cpu, upstream)?;
    let data =
        std::env::temp_dir().join(format!("selectloop-bench-perf-{}.data", std::process::id()));
    let mut perf = Command::new("perf")
        .args(["record", "-F", "2999", "-g", "-o"])
        .arg(&data)
        .args(["-p", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let measured = measure(env, child.id(), &addr, scenario, client_cpu, false);
    let _ = kill(Pid::from_raw(perf.id() as i32), Signal::SIGINT);
    let _ = perf.wait();
    stop(&mut child);
    measured?;
    let report = |sort: &str, lines: usize| -> io::Result<String> {
        let out = Command::new("perf")
            .args(["report", "-i"])
            .arg(&data)
            .args(["--no-children", "--stdio", "-g", "none", "--sort", sort])
            .stderr(Stdio::null())
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('%'))
            .take(lines)
            .map(|l| format!("{}\n", l.trim_end()))
            .collect())
    };
    let text = format!("{}\n{}", report("dso", 4)?, report("dso,sym", 16)?);
    let _ = std::fs::remove_file(&data);
    Ok(text)
}

/// A running syscall counter attached to the server's process tree.
struct Counter {
    child: Child,
    kind: SyscallCounter,
    out: PathBuf,
}

fn start_counter(kind: SyscallCounter, pid: u32) -> io::Result<Counter> {
    let pids: Vec<String> = process_tree(pid).iter().map(|p| p.to_string()).collect();
    let out = std::env::temp_dir().join(format!(
        "selectloop-bench-syscalls-{}.txt",
        std::process::id()
    ));
    let mut cmd = match kind {
        SyscallCounter::Perf => {
            let mut c = Command::new("perf");
            c.args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o"])
                .arg(&out)
                .args(["-p", &pids.join(",")]);
            c
        }
        SyscallCounter::Strace => {
            let mut c = Command::new("strace");
            c.args(["-c", "-f", "-o"]).arg(&out);
            for p in &pids {
                c.args(["-p", p]);
            }
            c
        }
    };
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // let it attach before the measured part starts
    std::thread::sleep(Duration::from_millis(300));
    Ok(Counter { child, kind, out })
}

fn stop_counter(c: &mut Counter) -> io::Result<u64> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let pid = Pid::from_raw(c.child.id() as i32);
    kill(pid, Signal::SIGINT).map_err(io::Error::from)?;
    let _ = c.child.wait();
    let text = std::fs::read_to_string(&c.out)?;
    let _ = std::fs::remove_file(&c.out);
    let n = match c.kind {
        // "12345,,raw_syscalls:sys_enter,..."
        SyscallCounter::Perf => text
            .lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))
            .and_then(|l| l.split(',').next())
            .and_then(|v| v.trim().parse::<u64>().ok()),
        // the "total" row of strace -c: "100.00 0.01 1 12345 67 total"
        SyscallCounter::Strace => text
            .lines()
            .find(|l| l.trim_end().ends_with("total"))
            .and_then(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.get(f.len().checked_sub(3)?)?.parse::<u64>().ok()
            }),
    };
    n.ok_or_else(|| io::Error::other(format!("cannot parse the syscall count from {text:?}")))
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let kb: f64 = s.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpus} × {cpu}, {mem}, Linux {kernel}, {rustc}; load average before the run: {load}")
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median of one field over the rounds.
fn med(
    results: &Results,
    pass: &'static str,
    server: &str,
    scenario: Scenario,
    f: fn(&Sample) -> f64,
) -> Option<f64> {
    results
        .get(&(pass, server.to_string(), scenario))
        .and_then(|v| median(v.iter().map(f).collect()))
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{:.0}", x);
        // thousands separators
        let bytes: Vec<char> = s.chars().collect();
        let mut out = String::new();
        for (i, c) in bytes.iter().enumerate() {
            if i > 0 && (bytes.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(*c);
        }
        out
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// An integer with thousands separators.
fn fmt_int(x: f64) -> String {
    if x >= 100.0 {
        fmt_num(x)
    } else {
        format!("{x:.0}")
    }
}

/// "value (ratio×)" against the reference server.
fn cell(v: Option<f64>, reference: Option<f64>) -> String {
    match (v, reference) {
        (Some(v), Some(r)) if r > 0.0 => format!("{} ({:.2}×)", fmt_num(v), v / r),
        (Some(v), _) => fmt_num(v),
        _ => "–".into(),
    }
}

const REF: &str = "selectloop poll";

/// Everything the Markdown report is made of.
struct Report<'a> {
    results: &'a Results,
    servers: &'a [ServerSpec],
    forwarders: &'a [ServerSpec],
    churn: &'a [ChurnRow],
    /// (backend without timers, the same with idle timers)
    timer_rows: &'a [(ServerSpec, ServerSpec)],
    bulk: &'a [(usize, u64)],
    notes: &'a [String],
    machine: &'a str,
    command: &'a str,
    pin: Pin,
    rounds: usize,
    cost_rounds: usize,
    secs: f64,
    elapsed: f64,
    /// The passes that ran.
    ran: &'a [PassName],
    /// Some passes only (`--pass`): leave out what was not measured.
    partial: bool,
    instr_rt: u64,
    instr_reps: usize,
}

fn render_markdown(report: &Report<'_>) -> String {
    let &Report {
        results,
        servers,
        forwarders,
        churn,
        timer_rows,
        bulk,
        notes,
        machine,
        command,
        pin,
        rounds,
        cost_rounds,
        secs,
        elapsed,
        ran,
        partial,
        instr_rt,
        instr_reps,
    } = report;
    let ran = |p: PassName| ran.contains(&p);
    let mut md = String::new();
    let pin_text = match pin {
        Pin::None => "not pinned",
        Pin::Same => "server and client on CPU 0",
        Pin::Split => "server on CPU 0, client on CPU 1",
    };
    let _ = writeln!(md, "# selectloop benchmark results\n");
    let _ = writeln!(md, "Machine: {machine}.  ");
    let _ = writeln!(md, "Command: `{command}` ({elapsed:.0} s).  ");
    if partial {
        let names: Vec<String> = PassName::value_variants()
            .iter()
            .filter(|p| ran(**p))
            .filter_map(|p| p.to_possible_value().map(|v| v.get_name().to_string()))
            .collect();
        let _ = writeln!(md, "Passes: {} (a partial run).  ", names.join(", "));
    }
    let _ = writeln!(
        md,
        "Timing and idle passes: {pin_text}, median of {rounds} interleaved rounds, pingpong {secs} s per run. \
         Cost and timer passes: server and client on one CPU, median of {cost_rounds} rounds (timers: at most 3). \
         Instructions: callgrind, median of {instr_reps} repetitions. \
         Every ratio is to `{REF}` (the crate's poll backend) unless its table says otherwise.\n"
    );
    // how much the rounds disagreed: the noise floor of every comparison
    let spread = |pass: &str, f: fn(&Sample) -> f64| -> Option<f64> {
        median(
            results
                .iter()
                .filter(|((p, _, _), v)| *p == pass && v.len() > 1)
                .filter_map(|(_, v)| {
                    let xs: Vec<f64> = v.iter().map(f).collect();
                    let m = median(xs.clone())?;
                    let (lo, hi) = xs
                        .iter()
                        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
                    (m > 0.0).then(|| (hi - lo) / m * 100.0)
                })
                .collect(),
        )
    };
    if let (Some(t), Some(c)) = (
        spread("timing", |s| s.rate),
        spread("cost", |s| s.cpu_ns_per_unit),
    ) {
        let _ = writeln!(
            md,
            "Noise: the rounds of one server and scenario differ by a median of {t:.0} % (max − min over median) \
             in the timing pass and {c:.1} % in the cost pass; differences smaller than that are not significant.\n"
        );
    }
    if let Some(i) = spread("idle", |s| s.rate) {
        let _ = writeln!(
            md,
            "In the idle pass the rounds differ by a median of {i:.0} % in round trips/s.\n"
        );
    }
    if let Some(i) = spread("instructions", |s| s.instr_per_unit) {
        let _ = writeln!(
            md,
            "Instructions per round trip differ between repetitions by a median of {i:.1} % \
             (how round trips batch into loop iterations varies a little).\n"
        );
    }
    let rate = |s: &Sample| s.rate;
    let p99 = |s: &Sample| s.p99_us;
    let p50 = |s: &Sample| s.p50_us;
    let cpu = |s: &Sample| s.cpu_ns_per_unit;
    let sys = |s: &Sample| s.syscalls_per_unit;

    if ran(PassName::Timing) {
        // Throughput
        let _ = writeln!(md, "## Pingpong 64 B: round trips/s (higher is better)\n");
        let mut head = String::from("| server |");
        let mut sep = String::from("|---|");
        for n in PINGPONG {
            let _ = write!(head, " {n} conn |");
            sep.push_str("---:|");
        }
        let _ = writeln!(md, "{head}\n{sep}");
        for s in servers {
            let mut row = format!("| {} |", s.name);
            for n in PINGPONG {
                let sc = Scenario::Pingpong(n);
                let _ = write!(
                    row,
                    " {} |",
                    cell(
                        med(results, "timing", &s.name, sc, rate),
                        med(results, "timing", REF, sc, rate)
                    )
                );
            }
            let _ = writeln!(md, "{row}");
        }

        let _ = writeln!(
            md,
            "\n## Pingpong 64 B: latency p50 / p99, µs (lower is better)\n"
        );
        let _ = writeln!(md, "{head}\n{sep}");
        for s in servers {
            let mut row = format!("| {} |", s.name);
            for n in PINGPONG {
                let sc = Scenario::Pingpong(n);
                let a = med(results, "timing", &s.name, sc, p50);
                let b = med(results, "timing", &s.name, sc, p99);
                match (a, b) {
                    (Some(a), Some(b)) => {
                        let _ = write!(row, " {} / {} |", fmt_num(a), fmt_num(b));
                    }
                    _ => row.push_str(" – |"),
                }
            }
            let _ = writeln!(md, "{row}");
        }

        let _ = writeln!(
            md,
            "\n## Pingpong 64 B, 1,000 busy connections: where each round trip's CPU goes\n\n\
             Server and load generator CPU µs per round trip in the timing pass (server on CPU 0, \
             client on CPU 1). With epoll, the kernel's wake-up work for a ready socket \
             (`ep_poll_callback`, run when a segment arrives) is charged to the *sending* process; \
             poll(2) only pays for a wake-up while the server sleeps in it. When the client's CPU \
             is the bottleneck, that moves round trips/s, not the server's own cost.\n"
        );
        let _ = writeln!(
            md,
            "| server | round trips/s | server CPU µs/rt | client CPU µs/rt |\n|---|---:|---:|---:|"
        );
        let busy = Scenario::Pingpong(1000);
        for s in servers {
            let r = med(results, "timing", &s.name, busy, rate);
            let c = med(results, "timing", &s.name, busy, cpu);
            let cc = med(results, "timing", &s.name, busy, |x| {
                x.client_cpu_ns_per_unit
            });
            if let (Some(r), Some(c), Some(cc)) = (r, c, cc) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.2} | {:.2} |",
                    s.name,
                    fmt_num(r),
                    c / 1e3,
                    cc / 1e3
                );
            }
        }

        let _ = writeln!(
            md,
            "\n## Bulk echo: MiB/s, server CPU ms per MiB, server syscalls per MiB\n"
        );
        let mut head = String::from("| server |");
        let mut sep = String::from("|---|");
        for (n, m) in bulk {
            let _ = write!(head, " {n} × {m} MiB, MiB/s | CPU ms/MiB | syscalls/MiB |");
            sep.push_str("---:|---:|---:|");
        }
        let _ = writeln!(md, "{head}\n{sep}");
        for s in servers {
            let mut row = format!("| {} |", s.name);
            for &(n, m) in bulk {
                let sc = Scenario::Bulk(n, m);
                let _ = write!(
                    row,
                    " {} | {} |",
                    cell(
                        med(results, "timing", &s.name, sc, rate),
                        med(results, "timing", REF, sc, rate)
                    ),
                    cell(
                        med(results, "timing", &s.name, sc, cpu).map(|x| x / 1e6),
                        med(results, "timing", REF, sc, cpu).map(|x| x / 1e6)
                    )
                );
                let _ = write!(
                    row,
                    " {} |",
                    med(results, "syscalls", &s.name, sc, sys)
                        .map(fmt_num)
                        .unwrap_or_else(|| "–".into())
                );
            }
            let _ = writeln!(md, "{row}");
        }
    }

    if ran(PassName::Cost) || ran(PassName::Syscalls) {
        let _ = writeln!(
            md,
            "\n## Cost per round trip (pingpong 64 B; lower is better)\n"
        );
        let _ = writeln!(
            md,
            "Server CPU µs per round trip with server and client pinned to one CPU; \
         system calls the server makes per round trip (counted in a separate, shorter pass).\n"
        );
        let _ = writeln!(
        md,
        "| server | CPU µs/rt, 1 conn | CPU µs/rt, 10 conn | CPU µs/rt, 1000 conn | syscalls/rt, 1 conn | 10 conn | 100 conn |\n|---|---:|---:|---:|---:|---:|---:|"
    );
        for s in servers {
            let mut row = format!("| {} |", s.name);
            for n in [1, 10, 1000] {
                let sc = Scenario::Pingpong(n);
                let _ = write!(
                    row,
                    " {} |",
                    cell(
                        med(results, "cost", &s.name, sc, cpu).map(|x| x / 1e3),
                        med(results, "cost", REF, sc, cpu).map(|x| x / 1e3)
                    )
                );
            }
            for n in [1, 10, 100] {
                let sc = Scenario::Pingpong(n);
                let _ = write!(
                    row,
                    " {} |",
                    med(results, "syscalls", &s.name, sc, sys)
                        .map(|x| format!("{x:.2}"))
                        .unwrap_or_else(|| "–".into())
                );
            }
            let _ = writeln!(md, "{row}");
        }
    }

    if !churn.is_empty() {
        let _ = writeln!(
            md,
            "\n## Connection churn through a listen backlog of 5\n\n\
             {CHURN_CONNECTS} connects in batches of {CHURN_BATCH}, each batch closed before the next \
             (`loadgen --mode churn`: one connect after another, each waited for up to 2 ms), \
             forwarders to the same `echo_server --poll`, nothing pinned (client, forwarder and \
             upstream share the 2 CPUs, as they would on a small host). A connect over 500 ms is \
             a SYN the kernel dropped because the accept queue (backlog + 1 = 6 places on Linux) \
             was full, sent again after 1 s. One row per server: each round's count, and the slowest connect.\n"
        );
        let _ = writeln!(
            md,
            "| server | connects > 500 ms, per round | failed | slowest, ms |\n|---|---:|---:|---:|"
        );
        for row in churn {
            let slow: Vec<String> = row.runs.iter().map(|r| r.slow.to_string()).collect();
            let failed: usize = row.runs.iter().map(|r| r.failed).sum();
            let worst = row.runs.iter().map(|r| r.worst_ms).fold(0.0, f64::max);
            let _ = writeln!(
                md,
                "| {} | {} | {failed} | {} |",
                row.name,
                slow.join(" / "),
                fmt_num(worst)
            );
        }
    }

    if !forwarders.is_empty() {
        let _ = writeln!(
            md,
            "\n## Port forwarder (to the same `echo_server --poll`)\n\nRatios are to socat.\n"
        );
        let mut head = String::from("| forwarder |");
        let mut sep = String::from("|---|");
        for (n, m) in bulk {
            let _ = write!(head, " {n} × {m} MiB, MiB/s | CPU ms/MiB |");
            sep.push_str("---:|---:|");
        }
        head.push_str(" 1,000 conn pingpong rt/s | p50 / p99 µs |");
        sep.push_str("---:|---:|");
        let _ = writeln!(md, "{head}\n{sep}");
        for f in forwarders {
            let mut row = format!("| {} |", f.name);
            for &(n, m) in bulk {
                let sc = Scenario::Bulk(n, m);
                let _ = write!(
                    row,
                    " {} | {} |",
                    cell(
                        med(results, "forwarder", &f.name, sc, rate),
                        med(results, "forwarder", "socat", sc, rate)
                    ),
                    cell(
                        med(results, "forwarder", &f.name, sc, cpu).map(|x| x / 1e6),
                        med(results, "forwarder", "socat", sc, cpu).map(|x| x / 1e6)
                    )
                );
            }
            let sc = Scenario::Pingpong(1000);
            let _ = write!(
                row,
                " {} |",
                cell(
                    med(results, "forwarder", &f.name, sc, rate),
                    med(results, "forwarder", "socat", sc, rate)
                )
            );
            match (
                med(results, "forwarder", &f.name, sc, p50),
                med(results, "forwarder", &f.name, sc, p99),
            ) {
                (Some(a), Some(b)) => {
                    let _ = write!(row, " {} / {} |", fmt_num(a), fmt_num(b));
                }
                _ => row.push_str(" – |"),
            }
            let _ = writeln!(md, "{row}");
        }
    }

    let instr = |s: &Sample| s.instr_per_unit;
    const MIO: &str = "mio (epoll)";
    if ran(PassName::Instructions) {
        let _ = writeln!(
            md,
            "\n## User-space instructions per round trip (callgrind; lower is better)\n"
        );
        let _ = writeln!(
            md,
            "Pingpong 64 B on 10 connections, {instr_rt} round trips each, the server under \
             `valgrind --tool=callgrind`, server and client on CPU 0. The counters are zeroed \
             (`callgrind_control -z`) after the connections are up and warm and dumped (`-d`) after \
             the last round trip, so only the measured round trips are counted. User space only \
             (the kernel's share is in the CPU figures); independent of the machine's speed and \
             load. Median of {instr_reps} repetitions. Ratios are to mio.\n"
        );
        let _ = writeln!(
            md,
            "The last two columns: the same 10 connections beside 5,000 idle ones ({} round trips \
             each, one repetition); select(2) cannot take them.\n",
            (instr_rt / 10).max(1)
        );
        let _ = writeln!(
            md,
            "| server | instructions/rt, 10 conn | ratio to mio | 10 conn + 5,000 idle | ratio to mio |\n|---|---:|---:|---:|---:|"
        );
        for s in servers {
            let mut row = format!("| {} |", s.name);
            let mut any = false;
            for sc in [Scenario::Pingpong(10), IDLE] {
                let v = med(results, "instructions", &s.name, sc, instr);
                let m = med(results, "instructions", MIO, sc, instr).filter(|m| *m > 0.0);
                any |= v.is_some();
                let _ = write!(
                    row,
                    " {} | {} |",
                    v.map(fmt_int).unwrap_or_else(|| "–".into()),
                    match (v, m) {
                        (Some(v), Some(m)) => format!("{:.2}×", v / m),
                        _ => "–".into(),
                    }
                );
            }
            if any {
                let _ = writeln!(md, "{row}");
            }
        }
    }

    if ran(PassName::Idle) {
        let _ = writeln!(
            md,
            "\n## Idle connections: {} (pingpong on the 10, the others silent)\n",
            IDLE.label()
        );
        let _ = writeln!(
            md,
            "Round trips/s and latency of the 10 active connections; server CPU µs per round trip \
             ({pin_text}). Ratios are to `{REF}`. select(2) cannot take {} connections \
             (FD_SETSIZE is {FD_SETSIZE}).\n",
            fmt_int(IDLE.connections() as f64)
        );
        let _ = writeln!(
            md,
            "| server | round trips/s | p50 / p99 µs | CPU µs/rt |\n|---|---:|---:|---:|"
        );
        for s in servers {
            if uses_select(s) {
                let _ = writeln!(md, "| {} | – (FD_SETSIZE) | – | – |", s.name);
                continue;
            }
            let lat = match (
                med(results, "idle", &s.name, IDLE, p50),
                med(results, "idle", &s.name, IDLE, p99),
            ) {
                (Some(a), Some(b)) => format!("{} / {}", fmt_num(a), fmt_num(b)),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {lat} | {} |",
                s.name,
                cell(
                    med(results, "idle", &s.name, IDLE, rate),
                    med(results, "idle", REF, IDLE, rate)
                ),
                cell(
                    med(results, "idle", &s.name, IDLE, cpu).map(|x| x / 1e3),
                    med(results, "idle", REF, IDLE, cpu).map(|x| x / 1e3)
                ),
            );
        }
    }

    if ran(PassName::Timers) && !timer_rows.is_empty() {
        let _ = writeln!(
            md,
            "\n## Idle timers: {}, every connection with an idle timer\n",
            TIMERS.label()
        );
        let _ = writeln!(
            md,
            "`echo_server --idle-timeout {IDLE_TIMEOUT_SECS}` arms a timer per connection and pushes \
             it back on every read; the same server with `--idle-timeout 0` has none. Server CPU µs per \
             round trip with server and client on one CPU; user-space instructions per round trip \
             under callgrind ({} round trips per active connection).\n",
            (instr_rt / 10).max(1)
        );
        let _ = writeln!(
            md,
            "| backend | CPU µs/rt, no timers | with timers | ratio | instructions/rt, no timers | with timers | ratio |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for (plain, timed) in timer_rows {
            let c0 = med(results, "timers", &plain.name, TIMERS, cpu).map(|x| x / 1e3);
            let c1 = med(results, "timers", &timed.name, TIMERS, cpu).map(|x| x / 1e3);
            let i0 = med(results, "timers instructions", &plain.name, TIMERS, instr);
            let i1 = med(results, "timers instructions", &timed.name, TIMERS, instr);
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if a > 0.0 => format!("{:.3}×", b / a),
                _ => "–".into(),
            };
            let num = |v: Option<f64>| v.map(fmt_num).unwrap_or_else(|| "–".into());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                plain.name,
                num(c0),
                num(c1),
                ratio(c0, c1),
                i0.map(fmt_int).unwrap_or_else(|| "–".into()),
                i1.map(fmt_int).unwrap_or_else(|| "–".into()),
                ratio(i0, i1)
            );
        }
    }

    // Targets
    let _ = writeln!(md, "\n## Targets\n");
    let _ = writeln!(md, "| target | measured | verdict |\n|---|---|---|");
    let mut rows = String::new();
    let mut target = |what: String, measured: String, ok: Option<bool>, by: String| {
        if partial && ok.is_none() && measured == "–" {
            // a pass this run did not include
            return;
        }
        let verdict = match ok {
            Some(true) => "met".to_string(),
            Some(false) => format!("**missed** {by}"),
            None if measured != "–" => "reference".to_string(),
            None => "not measured".to_string(),
        };
        let _ = writeln!(rows, "| {what} | {measured} | {verdict} |");
    };
    let get_cost =
        |server: &str, n: usize| med(results, "cost", server, Scenario::Pingpong(n), cpu);
    for (backend, floor) in [
        ("selectloop poll", "floor poll(2)"),
        ("selectloop select", "floor select(2)"),
    ] {
        for n in [1, 10] {
            let (b, f, m) = (
                get_cost(backend, n),
                get_cost(floor, n),
                get_cost("mio (epoll)", n),
            );
            if let (Some(b), Some(f)) = (b, f) {
                let ratio = b / f;
                target(
                    format!("CPU/rt, {n} conn, pinned: {backend} ≤ 1.05 × {floor}"),
                    format!("{:.2} vs {:.2} µs = {ratio:.3}×", b / 1e3, f / 1e3),
                    Some(ratio <= 1.05),
                    format!("by {:.1} %", (ratio / 1.05 - 1.0) * 100.0),
                );
            } else {
                target(
                    format!("CPU/rt, {n} conn: {backend} ≤ 1.05 × {floor}"),
                    "–".into(),
                    None,
                    String::new(),
                );
            }
            if let (Some(b), Some(m)) = (b, m) {
                target(
                    format!("CPU/rt, {n} conn, pinned: {backend} ≤ mio"),
                    format!("{:.2} vs {:.2} µs = {:.3}×", b / 1e3, m / 1e3, b / m),
                    Some(b <= m),
                    format!("by {:.1} %", (b / m - 1.0) * 100.0),
                );
            }
        }
    }
    if let Some(py) = get_cost("Python asyncore", 1) {
        if let Some(f) = get_cost("floor select(2)", 1) {
            target(
                "(reference, no target) Python asyncore CPU/rt, 1 conn, vs the select floor (the issue says about 1.8×)".into(),
                format!("{:.2} vs {:.2} µs = {:.2}×", py / 1e3, f / 1e3, py / f),
                None,
                String::new(),
            );
        }
    }
    for backend in ["selectloop poll", "selectloop select"] {
        let s = med(results, "syscalls", backend, Scenario::Pingpong(100), sys);
        target(
            format!("syscalls/rt at 100 conn: {backend} ≤ 2.1"),
            s.map(|s| format!("{s:.2}")).unwrap_or_else(|| "–".into()),
            s.map(|s| s <= 2.1),
            s.map(|s| {
                format!(
                    "by {:.2} syscalls ({:.0} %)",
                    s - 2.1,
                    (s / 2.1 - 1.0) * 100.0
                )
            })
            .unwrap_or_default(),
        );
    }
    for &(n, m) in bulk {
        let sc = Scenario::Bulk(n, m);
        for backend in ["selectloop poll", "selectloop select"] {
            let b = med(results, "timing", backend, sc, cpu);
            let mi = med(results, "timing", "mio (epoll)", sc, cpu);
            if let (Some(b), Some(mi)) = (b, mi) {
                target(
                    format!("bulk {n} × {m} MiB CPU/MiB: {backend} ≤ mio"),
                    format!("{:.3} vs {:.3} ms/MiB = {:.2}×", b / 1e6, mi / 1e6, b / mi),
                    Some(b <= mi),
                    format!("by {:.0} %", (b / mi - 1.0) * 100.0),
                );
            }
        }
    }
    if forwarders.iter().any(|f| f.name == "socat") {
        for &(n, m) in bulk {
            let sc = Scenario::Bulk(n, m);
            let pf = med(results, "forwarder", "port_forwarder poll", sc, rate);
            let so = med(results, "forwarder", "socat", sc, rate);
            if let (Some(pf), Some(so)) = (pf, so) {
                target(
                    format!("forwarder bulk {n} × {m} MiB: MiB/s ≥ 2 × socat"),
                    format!("{:.0} vs {:.0} MiB/s = {:.2}×", pf, so, pf / so),
                    Some(pf >= 2.0 * so),
                    format!("by {:.0} %", (1.0 - pf / (2.0 * so)) * 100.0),
                );
            }
            let pc = med(results, "forwarder", "port_forwarder poll", sc, cpu);
            let sc_ = med(results, "forwarder", "socat", sc, cpu);
            if let (Some(pc), Some(sc_)) = (pc, sc_) {
                target(
                    format!("forwarder bulk {n} × {m} MiB: CPU/MiB ≤ socat / 3"),
                    format!(
                        "{:.3} vs {:.3} ms/MiB = {:.2}×",
                        pc / 1e6,
                        sc_ / 1e6,
                        pc / sc_
                    ),
                    Some(pc * 3.0 <= sc_),
                    format!("by {:.0} %", (pc * 3.0 / sc_ - 1.0) * 100.0),
                );
            }
        }
        let sc = Scenario::Pingpong(1000);
        let pf = med(results, "forwarder", "port_forwarder poll", sc, p99);
        let so = med(results, "forwarder", "socat", sc, p99);
        if let (Some(pf), Some(so)) = (pf, so) {
            target(
                "forwarder, 1,000 conn pingpong, poll backend: p99 < socat's".into(),
                format!("{:.0} vs {:.0} µs", pf, so),
                Some(pf < so),
                format!("by {:.0} %", (pf / so - 1.0) * 100.0),
            );
        }
    }
    // issue 10: churned connections at the default backlog
    if let Some(row) = churn
        .iter()
        .find(|c| c.name.starts_with("port_forwarder poll (backlog 5"))
    {
        let worst = row
            .runs
            .iter()
            .map(|r| r.slow + r.failed)
            .max()
            .unwrap_or(0);
        target(
            format!(
                "port_forwarder, default backlog 5: {CHURN_CONNECTS} churned connections, no connect over 500 ms"
            ),
            format!("{worst} over 500 ms or failed (worst round)"),
            Some(worst == 0),
            format!("{worst} connects"),
        );
    }
    // issue 9: instructions per round trip
    let get_instr = |server: &str| {
        med(
            results,
            "instructions",
            server,
            Scenario::Pingpong(10),
            instr,
        )
    };
    if let (Some(p), Some(m)) = (get_instr(REF), get_instr(MIO)) {
        target(
            "instructions/rt, 10 conn: selectloop poll ≤ mio".into(),
            format!("{p:.0} vs {m:.0} = {:.2}×", p / m),
            Some(p <= m),
            format!("by {:.0} %", (p / m - 1.0) * 100.0),
        );
    }
    if let (Some(s), Some(p)) = (get_instr("selectloop select"), get_instr(REF)) {
        target(
            "instructions/rt, 10 conn: selectloop select ≤ 1.3 × selectloop poll".into(),
            format!("{s:.0} vs {p:.0} = {:.2}×", s / p),
            Some(s <= 1.3 * p),
            format!("by {:.0} %", (s / (1.3 * p) - 1.0) * 100.0),
        );
    }
    // issue 9 and 11: idle connections
    let idle_cpu = |server: &str| med(results, "idle", server, IDLE, cpu);
    let idle_rate = |server: &str| med(results, "idle", server, IDLE, rate);
    if let (Some(b), Some(f)) = (idle_cpu(REF), idle_cpu("floor poll(2)")) {
        target(
            format!(
                "{}: CPU/rt, selectloop poll ≤ 1.02 × floor poll(2)",
                IDLE.label()
            ),
            format!("{:.2} vs {:.2} µs = {:.3}×", b / 1e3, f / 1e3, b / f),
            Some(b <= 1.02 * f),
            format!("by {:.1} %", (b / (1.02 * f) - 1.0) * 100.0),
        );
    }
    const EPOLL: &str = "selectloop epoll";
    if let (Some(e), Some(m)) = (idle_rate(EPOLL), idle_rate(MIO)) {
        target(
            format!(
                "{}: round trips/s, selectloop epoll ≥ 0.5 × mio",
                IDLE.label()
            ),
            format!("{} vs {} = {:.2}×", fmt_num(e), fmt_num(m), e / m),
            Some(e >= 0.5 * m),
            format!("by {:.0} %", (1.0 - e / (0.5 * m)) * 100.0),
        );
    }
    if let (Some(e), Some(m)) = (idle_cpu(EPOLL), idle_cpu(MIO)) {
        target(
            format!("{}: CPU/rt, selectloop epoll ≤ 2 × mio", IDLE.label()),
            format!("{:.2} vs {:.2} µs = {:.2}×", e / 1e3, m / 1e3, e / m),
            Some(e <= 2.0 * m),
            format!("by {:.0} %", (e / (2.0 * m) - 1.0) * 100.0),
        );
    }
    // issue 11: epoll no worse than 1.1 × poll with busy connections and bulk
    for n in [10, 1000] {
        let sc = Scenario::Pingpong(n);
        let e = med(results, "timing", EPOLL, sc, rate);
        let p = med(results, "timing", REF, sc, rate);
        if let (Some(e), Some(p)) = (e, p) {
            target(
                format!("pingpong × {n}: round trips/s, selectloop epoll ≥ poll / 1.1"),
                format!("{} vs {} = {:.2}×", fmt_num(e), fmt_num(p), e / p),
                Some(e * 1.1 >= p),
                format!("by {:.0} %", (p / (e * 1.1) - 1.0) * 100.0),
            );
        }
    }
    for n in [10, 1000] {
        if let (Some(e), Some(p)) = (
            med(results, "cost", EPOLL, Scenario::Pingpong(n), cpu),
            med(results, "cost", REF, Scenario::Pingpong(n), cpu),
        ) {
            target(
                format!("CPU/rt, {n} conn, pinned: selectloop epoll ≤ 1.1 × poll"),
                format!("{:.2} vs {:.2} µs = {:.3}×", e / 1e3, p / 1e3, e / p),
                Some(e <= 1.1 * p),
                format!("by {:.1} %", (e / (1.1 * p) - 1.0) * 100.0),
            );
        }
    }
    for &(n, m) in bulk {
        let sc = Scenario::Bulk(n, m);
        let e = med(results, "timing", EPOLL, sc, cpu);
        let p = med(results, "timing", REF, sc, cpu);
        if let (Some(e), Some(p)) = (e, p) {
            target(
                format!("bulk {n} × {m} MiB CPU/MiB: selectloop epoll ≤ 1.1 × poll"),
                format!("{:.3} vs {:.3} ms/MiB = {:.2}×", e / 1e6, p / 1e6, e / p),
                Some(e <= 1.1 * p),
                format!("by {:.0} %", (e / (1.1 * p) - 1.0) * 100.0),
            );
        }
    }
    md.push_str(&rows);
    let _ = writeln!(
        md,
        "| zero heap allocations per steady-state loop iteration | `tests/alloc.rs` (counting allocator; `cargo test --test alloc`) | see that test |"
    );
    if !notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}

/// Round trips/s against connections, one line per server, log x axis.
fn render_svg(results: &Results, servers: &[ServerSpec]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 460.0;
    const L: f64 = 80.0;
    const R: f64 = 210.0;
    const T: f64 = 50.0;
    const B: f64 = 60.0;
    const COLORS: [&str; 8] = [
        "#d62728", "#ff7f0e", "#1f77b4", "#17becf", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f",
    ];
    let series: Vec<(String, Vec<(usize, f64)>)> = servers
        .iter()
        .map(|s| {
            let pts = PINGPONG
                .iter()
                .filter_map(|&n| {
                    med(results, "timing", &s.name, Scenario::Pingpong(n), |x| {
                        x.rate
                    })
                    .map(|v| (n, v))
                })
                .collect();
            (s.name.clone(), pts)
        })
        .collect();
    // the idle scenario: one hollow point per server at its connection
    // count, not on the server's line (only 10 of them are busy)
    let idle: Vec<Option<f64>> = servers
        .iter()
        .map(|s| med(results, "idle", &s.name, IDLE, |x| x.rate))
        .collect();
    let have_idle = idle.iter().any(Option::is_some);
    let ymax_raw = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .chain(idle.iter().flatten().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let step = nice_step(ymax_raw / 5.0);
    let ymax = (ymax_raw / step).ceil() * step;
    let xmax = if have_idle {
        IDLE.connections()
    } else {
        *PINGPONG.last().unwrap_or(&1000)
    };
    let (x0, x1) = (0.0f64, (xmax as f64).log10());
    let px = |n: usize| L + ((n as f64).log10() - x0) / (x1 - x0) * (W - L - R);
    let py = |v: f64| H - B - v / ymax * (H - T - B);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="16" text-anchor="middle">Echo pingpong 64 B: round trips/s vs connections</text>"#,
        (W - R + L) / 2.0
    );
    // grid and y ticks
    let mut v = 0.0;
    while v <= ymax + step / 2.0 {
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{L}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            y + 4.0,
            fmt_int(v)
        );
        v += step;
    }
    for &n in &PINGPONG {
        let x = px(n);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            H - B,
            H - B + 18.0,
            fmt_int(n as f64)
        );
    }
    if have_idle {
        let x = px(IDLE.connections());
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{:.1}" stroke="#ddd" stroke-dasharray="2 2"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10">(10 busy)</text>"##,
            H - B,
            H - B + 18.0,
            fmt_int(IDLE.connections() as f64),
            H - B + 30.0
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{L}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000"/><line x1="{L}" y1="{T}" x2="{L}" y2="{:.1}" stroke="#000"/>"##,
        H - B,
        W - R,
        H - B,
        H - B
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent connections (log scale)</text>"#,
        (W - R + L) / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">round trips per second</text>"#,
        (H - B + T) / 2.0
    );
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = if name.starts_with("floor") {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let path: Vec<String> = pts
            .iter()
            .map(|&(n, v)| format!("{:.1},{:.1}", px(n), py(v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            path.join(" ")
        );
        for &(n, v) in pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                px(n),
                py(v)
            );
        }
        if let Some(v) = idle.get(i).copied().flatten() {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4.5" fill="white" stroke="{color}" stroke-width="2"/>"#,
                px(IDLE.connections()),
                py(v)
            );
        }
        let ly = T + 10.0 + i as f64 * 20.0;
        let lx = W - R + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            xml_escape(name)
        );
    }
    if have_idle {
        let ly = T + 10.0 + series.len() as f64 * 20.0 + 10.0;
        let lx = W - R + 15.0;
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{ly}" r="4.5" fill="white" stroke="#555" stroke-width="2"/><text x="{:.1}" y="{:.1}">10 busy + {} idle</text>"##,
            lx + 12.0,
            lx + 30.0,
            ly + 4.0,
            fmt_int((IDLE.connections() - 10) as f64)
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let n = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
