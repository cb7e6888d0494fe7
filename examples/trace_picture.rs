//! A picture of the loop: turns a recorded trace (the lines `--trace`
//! prints, or `RUST_LOG=selectloop=trace`) into a timeline, as a
//! self-contained SVG image or HTML page.
//!
//! ```text
//! cargo run --example echo_server -- --bind 127.0.0.1:8080 --trace 2> trace.txt
//! # ... connect, send, close; then Ctrl-C the server
//! cargo run --example trace_picture -- trace.txt > loop.html
//! cargo run --example trace_picture -- --svg --first 1 --last 12 trace.txt > loop.svg
//! ```
//!
//! One row per fd, labelled with what the fd is (from its `fd F: opened:`
//! line); one column per iteration, headed by its number, its time since
//! the loop started, the syscall and its timeout, and how many fds were
//! ready. Each cell says what was asked for that fd (`r w x` on select, the
//! `events` on poll, the interest on epoll), what came back, which handler
//! ran (and why), and marks where the fd opened and closed. Lines that are
//! not trace lines (other log messages) are skipped; the header
//! `env_logger` puts in front of each line is stripped. The trace format is
//! in the guide's chapter "Reading the trace".
//!
//! With no file, the trace is read from standard input. A trace with no
//! loop iteration in it, or a trace line that does not parse, is a one-line
//! error (naming the line) and exit status 1.

mod common;

use clap::Parser;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::{Read, Write};
use std::path::PathBuf;

/// Draws a recorded selectloop trace as a timeline (SVG or HTML)
#[derive(Parser, Debug)]
struct Args {
    /// The trace file (stderr of an example run with --trace); standard input if absent
    file: Option<PathBuf>,
    /// Write a bare SVG image instead of an HTML page
    #[arg(long)]
    svg: bool,
    /// First iteration to draw (default: the first in the trace)
    #[arg(long)]
    first: Option<u64>,
    /// Last iteration to draw (default: the last in the trace)
    #[arg(long)]
    last: Option<u64>,
    /// Title of the picture
    #[arg(long, default_value = "What the loop did")]
    title: String,
}

fn main() {
    let args: Args = common::parse_args();
    let (name, bytes) = match &args.file {
        Some(path) => match std::fs::read(path) {
            Ok(b) => (path.display().to_string(), b),
            Err(e) => common::fail(format_args!("cannot read {}: {e}", path.display())),
        },
        None => {
            let mut b = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut b) {
                common::fail(format_args!("cannot read standard input: {e}"));
            }
            ("standard input".to_string(), b)
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let mut trace = match Trace::parse(&text) {
        Ok(t) => t,
        Err(e) => common::fail(format_args!("{name}: {e}")),
    };
    if let Err(e) = trace.keep_range(args.first, args.last) {
        common::fail(format_args!("{name}: {e}"));
    }
    let svg = render_svg(&trace, &args.title);
    let page = if args.svg {
        svg
    } else {
        html_page(&svg, &args.title)
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(page.as_bytes()).and_then(|()| out.flush()) {
        common::fail(format_args!("cannot write the picture: {e}"));
    }
}

// ---------------------------------------------------------------- the model

/// Which syscall an iteration waited in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syscall {
    Select,
    Poll,
    Epoll,
}

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Syscall::Select => "select",
            Syscall::Poll => "poll",
            Syscall::Epoll => "epoll_wait",
        })
    }
}

/// What one fd saw in one iteration (one cell of the picture).
#[derive(Default, Debug, Clone)]
struct Cell {
    /// What was asked: `r w x` (select), `POLLIN|POLLPRI` (poll, epoll).
    asked: Option<String>,
    /// An `epoll_ctl` change made before this wait.
    changed: Option<String>,
    /// What came back.
    got: Option<String>,
    /// Handler calls (`handle_read`, with their cause) and notes, in order.
    events: Vec<String>,
    /// The label of an `opened:` line.
    opened: Option<String>,
    /// A `closed` line was seen.
    closed: bool,
}

#[derive(Debug, Clone)]
struct Iteration {
    /// The number the trace gives (`iteration N:`), or counted.
    number: u64,
    /// `+0.512345s`, if the trace has timestamps.
    time: Option<String>,
    /// The syscall; `None` for the column of lines before the first wait.
    syscall: Option<Syscall>,
    timeout: String,
    /// `N ready`, `0 ready (timeout)`, ... once the syscall returned.
    result: Option<String>,
    /// When it returned.
    returned_at: Option<String>,
    cells: BTreeMap<Row, Cell>,
}

impl Iteration {
    fn new(number: u64, time: Option<String>, syscall: Option<Syscall>, timeout: String) -> Self {
        Iteration {
            number,
            time,
            syscall,
            timeout,
            result: None,
            returned_at: None,
            cells: BTreeMap::new(),
        }
    }

    fn cell(&mut self, row: Row) -> &mut Cell {
        self.cells.entry(row).or_default()
    }
}

/// A row of the picture: an fd, or the loop's timer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    Fd(i64),
    Timer,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Row::Fd(fd) => write!(f, "fd {fd}"),
            Row::Timer => f.write_str("timers"),
        }
    }
}

/// A parsed trace.
#[derive(Debug)]
struct Trace {
    iterations: Vec<Iteration>,
    /// Every label an fd had, in order (fd numbers are reused).
    labels: BTreeMap<Row, Vec<String>>,
}

/// A parse error, with the 1-based line number.
#[derive(Debug)]
struct ParseError {
    line: usize,
    what: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.what)
        } else {
            write!(f, "line {}: {}", self.line, self.what)
        }
    }
}

/// The strings a trace line starts with, once any log header is stripped.
const ANCHORS: [&str; 13] = [
    "[+",
    "iteration ",
    "select(",
    "select -> ",
    "poll(",
    "poll -> ",
    "epoll_wait(",
    "epoll_wait -> ",
    "epoll_ctl(",
    "pollfd fd=",
    "fd=",
    "fd ",
    "timer: ",
];

/// The trace line inside `raw`, with whatever a logger put in front of it
/// removed; `None` if `raw` holds no trace line.
fn strip_header(raw: &str) -> Option<&str> {
    let mut best: Option<usize> = None;
    for anchor in ANCHORS {
        let mut from = 0;
        while let Some(pos) = raw[from..].find(anchor).map(|p| p + from) {
            if anchor_fits(raw, pos, anchor) {
                best = Some(best.map_or(pos, |b| b.min(pos)));
                break;
            }
            from = pos + anchor.len();
        }
    }
    best.map(|b| &raw[b..])
}

/// `fd ` must be `fd DIGITS:`, `fd=` must follow a space or start the line.
fn anchor_fits(raw: &str, pos: usize, anchor: &str) -> bool {
    let before_ok = pos == 0 || raw[..pos].ends_with([' ', ']', '\t']);
    let rest = &raw[pos + anchor.len()..];
    match anchor {
        "fd " => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            before_ok && digits > 0 && rest[digits..].starts_with(':')
        }
        // An epoll ready entry, `fd=7 events=...`: not the `fd=7>` of a
        // dispatcher's Debug text inside some other log line.
        "fd=" => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            before_ok && digits > 0 && rest[digits..].starts_with(" events=")
        }
        "[+" => rest.starts_with(|c: char| c.is_ascii_digit()),
        _ => before_ok,
    }
}

/// The numbers in `{3, 4, 10}`.
fn parse_set(text: &str) -> Result<Vec<i64>, String> {
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("expected an fd set like {{3, 4}}, found `{text}`"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("`{s}` is not an fd number")))
        .collect()
}

/// The text after `key=` up to the next `, ` at brace depth 0 (or the end).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(key)? + key.len();
    let rest = &text[start..];
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '{' | '(' => depth += 1,
            '}' => depth -= 1,
            ')' if depth == 0 => return Some(&rest[..i]),
            ')' => depth -= 1,
            ',' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// A time since the loop started, as the trace prints it: `0.401633s`.
fn check_time(text: &str) -> Result<(), String> {
    match text.strip_suffix('s').map(str::parse::<f64>) {
        Some(Ok(secs)) if secs >= 0.0 => Ok(()),
        _ => Err(format!(
            "`+{text}` is not a time since the start (`+0.401633s`)"
        )),
    }
}

/// A wait's timeout: `none (block)` or seconds (`0.500s`).
fn check_timeout(text: &str) -> Result<String, String> {
    let ok = text == "none (block)"
        || text
            .strip_suffix('s')
            .is_some_and(|secs| secs.parse::<f64>().is_ok_and(|s| s >= 0.0));
    if ok {
        Ok(text.to_string())
    } else {
        Err(format!(
            "`timeout={text}`: expected `none (block)` or seconds (`0.500s`)"
        ))
    }
}

/// A set of poll(2) or epoll(7) flags as the trace prints it:
/// `POLLIN|POLLPRI`, `EPOLLIN|EPOLLHUP`, `0` for none, unnamed bits in hex.
fn check_flags(text: &str) -> Result<String, String> {
    const NAMES: [&str; 7] = ["IN", "PRI", "OUT", "ERR", "HUP", "NVAL", "RDHUP"];
    let text = text.trim();
    let known = |part: &str| {
        let name = part
            .strip_prefix("EPOLL")
            .or_else(|| part.strip_prefix("POLL"));
        name.is_some_and(|n| NAMES.contains(&n))
            || part
                .strip_prefix("0x")
                .is_some_and(|hex| u32::from_str_radix(hex, 16).is_ok())
    };
    if text == "0" || (!text.is_empty() && text.split('|').all(known)) {
        Ok(text.to_string())
    } else {
        Err(format!("`{text}` is not a set of poll or epoll flags"))
    }
}

fn parse_fd(text: &str) -> Result<i64, String> {
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits
        .parse()
        .map_err(|_| format!("expected an fd number, found `{text}`"))
}

/// Which part of the iteration the parser is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Listing the `pollfd`s passed in.
    Asking,
    /// After `-> N ready`: the ready entries and the handlers.
    Answered,
}

impl Trace {
    fn parse(text: &str) -> Result<Trace, ParseError> {
        let mut p = LineParser {
            iterations: vec![Iteration::new(0, None, None, String::new())],
            labels: BTreeMap::new(),
            phase: Phase::Answered,
            interest: BTreeMap::new(),
            pending_ctl: Vec::new(),
        };
        for (i, raw) in text.lines().enumerate() {
            let Some(line) = strip_header(raw) else {
                continue;
            };
            p.line(line)
                .map_err(|what| ParseError { line: i + 1, what })?;
        }
        let waits = p.iterations.iter().filter(|i| i.syscall.is_some()).count();
        if waits == 0 {
            return Err(ParseError {
                line: 0,
                what: "no loop iteration found: expected trace lines such as \
                       `select(readfds=...)`, `poll(nfds=...)` or `epoll_wait(...)` \
                       (record one with an example's --trace flag: `2> trace.txt`)"
                    .to_string(),
            });
        }
        // The column of lines before the first wait, only if it has any.
        if p.iterations[0].cells.is_empty() {
            p.iterations.remove(0);
        }
        Ok(Trace {
            iterations: p.iterations,
            labels: p.labels,
        })
    }

    /// Keeps the iterations `first..=last` (the lines before the loop's
    /// first wait count as iteration 0).
    fn keep_range(&mut self, first: Option<u64>, last: Option<u64>) -> Result<(), String> {
        let (lo, hi) = (first.unwrap_or(0), last.unwrap_or(u64::MAX));
        let numbers = match (self.iterations.first(), self.iterations.last()) {
            (Some(a), Some(b)) => format!("{}..={}", a.number, b.number),
            _ => "none".to_string(),
        };
        self.iterations.retain(|i| (lo..=hi).contains(&i.number));
        if self.iterations.is_empty() {
            return Err(format!(
                "no iteration in --first {lo} --last {hi} (the trace has iterations {numbers})"
            ));
        }
        Ok(())
    }

    /// Every row that appears, in order.
    fn rows(&self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .iterations
            .iter()
            .flat_map(|i| i.cells.keys().copied())
            .collect();
        rows.sort();
        rows.dedup();
        rows
    }
}

struct LineParser {
    iterations: Vec<Iteration>,
    labels: BTreeMap<Row, Vec<String>>,
    phase: Phase,
    /// epoll: the interest each fd has registered (persists across waits).
    interest: BTreeMap<i64, String>,
    /// epoll_ctl lines since the last wait.
    pending_ctl: Vec<(i64, String)>,
}

impl LineParser {
    fn current(&mut self) -> &mut Iteration {
        // Never empty: it starts with the "before the loop" column.
        let last = self.iterations.len() - 1;
        &mut self.iterations[last]
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        let mut rest = line.trim();
        let mut time = None;
        if let Some(after) = rest.strip_prefix("[+") {
            let end = after
                .find(']')
                .ok_or_else(|| format!("unclosed timestamp in `{line}`"))?;
            check_time(&after[..end])?;
            time = Some(format!("+{}", &after[..end]));
            rest = after[end + 1..].trim_start();
        }
        let mut number = None;
        if let Some(after) = rest.strip_prefix("iteration ") {
            let (n, tail) = after
                .split_once(':')
                .ok_or_else(|| format!("expected `iteration N:` in `{line}`"))?;
            number = Some(
                n.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("`{n}` is not an iteration number"))?,
            );
            rest = tail.trim_start();
        }
        if let Some(call) = rest.strip_prefix("select(") {
            let sets = |key: &str| -> Result<Vec<i64>, String> {
                field(call, key)
                    .ok_or_else(|| format!("select line without {key}: `{line}`"))
                    .and_then(parse_set)
            };
            let (r, w, x) = (sets("readfds=")?, sets("writefds=")?, sets("exceptfds=")?);
            let timeout = check_timeout(field(call, "timeout=").unwrap_or("?"))?;
            self.begin(number, time, Syscall::Select, timeout);
            for (fd, flags) in select_flags(&r, &w, &x) {
                self.current().cell(Row::Fd(fd)).asked = Some(flags);
            }
        } else if let Some(call) = rest.strip_prefix("poll(") {
            let timeout = check_timeout(field(call, "timeout=").unwrap_or("?"))?;
            self.begin(number, time, Syscall::Poll, timeout);
            self.phase = Phase::Asking;
        } else if let Some(call) = rest.strip_prefix("epoll_wait(") {
            let timeout = check_timeout(field(call, "timeout=").unwrap_or("?"))?;
            self.begin(number, time, Syscall::Epoll, timeout);
            for (fd, change) in std::mem::take(&mut self.pending_ctl) {
                self.current().cell(Row::Fd(fd)).changed = Some(change);
            }
            let interest: Vec<(i64, String)> =
                self.interest.iter().map(|(k, v)| (*k, v.clone())).collect();
            for (fd, events) in interest {
                self.current().cell(Row::Fd(fd)).asked = Some(events);
            }
        } else if let Some(after) = ["select -> ", "poll -> ", "epoll_wait -> "]
            .iter()
            .find_map(|p| rest.strip_prefix(p))
        {
            self.result(after, time, line)?;
        } else if let Some(after) = rest.strip_prefix("pollfd fd=") {
            let fd = parse_fd(after)?;
            if self.current().syscall != Some(Syscall::Poll) {
                return Err(format!("`pollfd` line outside a poll(...) call: `{line}`"));
            }
            if let Some(asks) = after.strip_prefix("-1 (fd ") {
                // `pollfd fd=-1 (fd 7 asks for nothing: ignored)`: the
                // entry poll(2) skips for a channel that wants nothing.
                let fd = parse_fd(asks)?;
                self.current().cell(Row::Fd(fd)).asked = Some("nothing (fd=-1)".to_string());
            } else if let Some(ev) = field(after, "revents=") {
                self.current().cell(Row::Fd(fd)).got = Some(check_flags(ev)?);
            } else if let Some(ev) = field(after, "events=") {
                if self.phase != Phase::Asking {
                    return Err(format!("`events=` after poll returned: `{line}`"));
                }
                self.current().cell(Row::Fd(fd)).asked = Some(check_flags(ev)?);
            } else {
                return Err(format!("`pollfd` line without events or revents: `{line}`"));
            }
        } else if let Some(after) = rest.strip_prefix("fd=") {
            let fd = parse_fd(after)?;
            let ev = field(after, "events=")
                .ok_or_else(|| format!("ready entry without events: `{line}`"))?;
            self.current().cell(Row::Fd(fd)).got = Some(check_flags(ev)?);
        } else if let Some(call) = rest.strip_prefix("epoll_ctl(") {
            let op = call.split(',').next().unwrap_or("").trim();
            let fd = field(call, "fd=")
                .ok_or_else(|| format!("epoll_ctl line without fd=: `{line}`"))
                .and_then(parse_fd)?;
            let events = field(call, "events=").map(check_flags).transpose()?;
            let short = op.trim_start_matches("EPOLL_CTL_");
            match (short, events) {
                ("DEL", _) => {
                    self.interest.remove(&fd);
                    self.pending_ctl.push((fd, "DEL".to_string()));
                }
                (op, Some(events)) => {
                    self.interest.insert(fd, events.clone());
                    self.pending_ctl.push((fd, format!("{op} {events}")));
                }
                (_, None) => {
                    return Err(format!("epoll_ctl line without events=: `{line}`"));
                }
            }
        } else if let Some(after) = rest.strip_prefix("fd ") {
            let (fd, text) = after
                .split_once(':')
                .ok_or_else(|| format!("expected `fd N: ...`: `{line}`"))?;
            let fd = parse_fd(fd)?;
            self.fd_line(Row::Fd(fd), text.trim());
        } else if let Some(text) = rest.strip_prefix("timer: ") {
            self.fd_line(Row::Timer, text.trim());
        } else if time.is_some() || number.is_some() {
            return Err(format!("unknown trace line `{line}`"));
        }
        Ok(())
    }

    /// A new column.
    fn begin(&mut self, number: Option<u64>, time: Option<String>, call: Syscall, timeout: String) {
        let next = self.iterations.last().map_or(1, |i| i.number + 1);
        self.iterations.push(Iteration::new(
            number.unwrap_or(next),
            time,
            Some(call),
            timeout,
        ));
        self.phase = Phase::Answered;
    }

    /// `N ready ...` after the syscall returned.
    fn result(&mut self, after: &str, time: Option<String>, line: &str) -> Result<(), String> {
        if self.current().syscall.is_none() {
            return Err(format!("a result line before any wait: `{line}`"));
        }
        self.phase = Phase::Answered;
        let (head, sets) = match after.split_once(": readfds=") {
            Some((head, tail)) => (head, Some(format!("readfds={tail}"))),
            None => (after, None),
        };
        let it = self.current();
        it.returned_at = time;
        it.result = Some(
            head.replace(" (an fd counts once per set it is in)", "")
                .trim()
                .to_string(),
        );
        if let Some(sets) = sets {
            let set = |key: &str| -> Result<Vec<i64>, String> {
                field(&sets, key)
                    .ok_or_else(|| format!("select result without {key}: `{line}`"))
                    .and_then(parse_set)
            };
            let (r, w, x) = (set("readfds=")?, set("writefds=")?, set("exceptfds=")?);
            for (fd, flags) in select_flags(&r, &w, &x) {
                self.current().cell(Row::Fd(fd)).got = Some(flags);
            }
        }
        Ok(())
    }

    /// `fd F: TEXT` (or `timer: TEXT`).
    fn fd_line(&mut self, row: Row, text: &str) {
        if let Some(label) = text.strip_prefix("opened:") {
            let label = label.trim().to_string();
            self.labels.entry(row).or_default().push(label.clone());
            self.current().cell(row).opened = Some(label);
        } else if text.starts_with("closed") {
            self.current().cell(row).closed = true;
        } else {
            self.current().cell(row).events.push(text.to_string());
        }
    }
}

/// `r w x` per fd from select's three sets.
fn select_flags(r: &[i64], w: &[i64], x: &[i64]) -> BTreeMap<i64, String> {
    let mut out: BTreeMap<i64, String> = BTreeMap::new();
    for (set, name) in [(r, "r"), (w, "w"), (x, "x")] {
        for fd in set {
            let e = out.entry(*fd).or_default();
            if !e.is_empty() {
                e.push(' ');
            }
            e.push_str(name);
        }
    }
    out
}

// ------------------------------------------------------------ the drawing

/// Width of one character of the 12 px monospace font, generously.
const CHAR_W: f64 = 7.3;
const LINE_H: f64 = 15.0;
const PAD: f64 = 6.0;

/// One line of text in a cell, with its colour.
struct Text {
    text: String,
    colour: &'static str,
    bold: bool,
}

impl Text {
    fn new(text: impl Into<String>, colour: &'static str) -> Text {
        Text {
            text: text.into(),
            colour,
            bold: false,
        }
    }
}

const ASKED: &str = "#555555";
const GOT: &str = "#9a5b00";
const HANDLER: &str = "#0b6e2a";
const NOTE: &str = "#6a3d9a";
const OPENED: &str = "#1f5fbf";
const CLOSED: &str = "#b00020";

/// What one cell says. `reused`: the fd number had more than one label in
/// the trace, so an `opened` marker repeats the label.
fn cell_lines(cell: &Cell, syscall: Option<Syscall>, reused: bool) -> Vec<Text> {
    let mut lines = Vec::new();
    if let Some(label) = &cell.opened {
        let text = if reused {
            format!("opened: {label}")
        } else {
            "opened".to_string()
        };
        let mut t = Text::new(text, OPENED);
        t.bold = true;
        lines.push(t);
    }
    if let Some(change) = &cell.changed {
        lines.push(Text::new(format!("epoll_ctl {change}"), ASKED));
    }
    if let Some(asked) = &cell.asked {
        let verb = if syscall == Some(Syscall::Epoll) {
            "interest"
        } else {
            "asked"
        };
        lines.push(Text::new(format!("{verb}: {asked}"), ASKED));
    }
    if let Some(got) = &cell.got {
        let mut t = Text::new(format!("ready: {got}"), GOT);
        t.bold = true;
        lines.push(t);
    }
    for event in &cell.events {
        // `CAUSE -> handle_X` (the loop), `CAUSE -> recv` (the raw servers).
        match event.rsplit_once(" -> ") {
            Some((cause, handler)) => {
                lines.push(Text::new(format!("{cause} →"), NOTE));
                let mut t = Text::new(format!("  {handler}"), HANDLER);
                t.bold = true;
                lines.push(t);
            }
            _ => lines.push(Text::new(event.clone(), NOTE)),
        }
    }
    if cell.closed {
        let mut t = Text::new("closed, left the map", CLOSED);
        t.bold = true;
        lines.push(t);
    }
    lines
}

fn header_lines(it: &Iteration) -> Vec<Text> {
    let mut lines = Vec::new();
    let Some(call) = it.syscall else {
        let mut t = Text::new("before the loop", "#000000");
        t.bold = true;
        lines.push(t);
        return lines;
    };
    let mut t = Text::new(format!("iteration {}", it.number), "#000000");
    t.bold = true;
    lines.push(t);
    match (&it.time, &it.returned_at) {
        (Some(from), Some(to)) => lines.push(Text::new(format!("{from} → {to}"), ASKED)),
        (Some(from), None) => lines.push(Text::new(from.clone(), ASKED)),
        (None, Some(to)) => lines.push(Text::new(format!("→ {to}"), ASKED)),
        (None, None) => {}
    }
    lines.push(Text::new(format!("{call}, timeout={}", it.timeout), ASKED));
    match &it.result {
        Some(r) => lines.push(Text::new(format!("-> {r}"), GOT)),
        None => lines.push(Text::new("(still waiting)", GOT)),
    }
    lines
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn text_width(lines: &[Text]) -> f64 {
    lines
        .iter()
        .map(|t| t.text.chars().count())
        .max()
        .unwrap_or(0) as f64
        * CHAR_W
}

/// The row labels: `fd 4` and what it is (every label, if it was reused).
fn row_label(trace: &Trace, row: Row) -> Vec<Text> {
    let mut lines = vec![{
        let mut t = Text::new(row.to_string(), "#000000");
        t.bold = true;
        t
    }];
    match trace.labels.get(&row) {
        Some(labels) => {
            for l in labels {
                lines.push(Text::new(l.clone(), OPENED));
            }
        }
        None if row == Row::Timer => lines.push(Text::new("deadlines", OPENED)),
        None => lines.push(Text::new("(opened before the trace)", ASKED)),
    }
    lines
}

/// Draws the whole timeline as one `<svg>` element. Every style is an
/// attribute (no `<style>` block), so the SVG can be inlined in a page, or
/// in Markdown, without touching anything around it.
fn render_svg(trace: &Trace, title: &str) -> String {
    let rows = trace.rows();
    let headers: Vec<Vec<Text>> = trace.iterations.iter().map(header_lines).collect();
    let labels: Vec<Vec<Text>> = rows.iter().map(|r| row_label(trace, *r)).collect();
    let cells: Vec<Vec<Vec<Text>>> = rows
        .iter()
        .map(|row| {
            trace
                .iterations
                .iter()
                .map(|it| {
                    let reused = trace.labels.get(row).is_some_and(|l| l.len() > 1);
                    it.cells
                        .get(row)
                        .map(|c| cell_lines(c, it.syscall, reused))
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();

    // Column widths: the widest text in each column; row heights: the most
    // lines in each row.
    let label_w = labels.iter().map(|l| text_width(l)).fold(60.0, f64::max) + 2.0 * PAD;
    let col_w: Vec<f64> = (0..trace.iterations.len())
        .map(|c| {
            let widest = cells
                .iter()
                .map(|row| text_width(&row[c]))
                .fold(text_width(&headers[c]), f64::max);
            widest.max(80.0) + 2.0 * PAD
        })
        .collect();
    let height_of = |n: usize| n.max(1) as f64 * LINE_H + 2.0 * PAD;
    let header_h = height_of(headers.iter().map(Vec::len).max().unwrap_or(1));
    let row_h: Vec<f64> = rows
        .iter()
        .enumerate()
        .map(|(r, _)| {
            let most = cells[r]
                .iter()
                .map(Vec::len)
                .max()
                .unwrap_or(0)
                .max(labels[r].len());
            height_of(most)
        })
        .collect();
    let title_h = 28.0;
    let legend_h = 24.0;
    let width = label_w + col_w.iter().sum::<f64>() + 1.0;
    let height = title_h + header_h + row_h.iter().sum::<f64>() + legend_h + 1.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    let _ = writeln!(
        s,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{PAD}" y="19" font-size="15" font-weight="bold" fill="#000000">{}</text>"##,
        escape(title)
    );

    // Header row.
    let top = title_h;
    let mut x = label_w;
    for (c, lines) in headers.iter().enumerate() {
        cell_box(&mut s, x, top, col_w[c], header_h, "#e8eef7");
        write_lines(&mut s, x, top, lines);
        x += col_w[c];
    }
    cell_box(&mut s, 0.0, top, label_w, header_h, "#e8eef7");
    let mut y = top + header_h;
    // One row per fd; a cell is shaded by what happened in it.
    for (r, row) in rows.iter().enumerate() {
        cell_box(&mut s, 0.0, y, label_w, row_h[r], "#f4f4f4");
        write_lines(&mut s, 0.0, y, &labels[r]);
        let mut x = label_w;
        let mut open = false;
        for (c, it) in trace.iterations.iter().enumerate() {
            let cell = it.cells.get(row);
            if cell.is_some_and(|c| c.opened.is_some() || c.asked.is_some()) {
                open = true;
            }
            let fill = match cell {
                Some(c) if c.closed => "#fde2e4",
                Some(c) if c.events.iter().any(|e| e.contains(" -> ")) => "#dff3e3",
                Some(c) if c.got.is_some() => "#fff4d6",
                Some(c) if c.opened.is_some() => "#e3ecfb",
                Some(_) => "#ffffff",
                None if open => "#ffffff",
                None => "#fafafa",
            };
            cell_box(&mut s, x, y, col_w[c], row_h[r], fill);
            write_lines(&mut s, x, y, &cells[r][c]);
            if cell.is_some_and(|c| c.closed) {
                open = false;
            }
            x += col_w[c];
        }
        y += row_h[r];
    }
    // Legend.
    let legend = [
        ("asked / interest", ASKED),
        ("ready (what came back)", GOT),
        ("cause →", NOTE),
        ("handler that ran", HANDLER),
        ("opened", OPENED),
        ("closed", CLOSED),
    ];
    let mut lx = PAD;
    let ly = y + 17.0;
    for (name, colour) in legend {
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" fill="{colour}" font-weight="bold">■ {}</text>"#,
            escape(name)
        );
        lx += (name.chars().count() as f64 + 4.0) * CHAR_W;
    }
    s.push_str("</svg>\n");
    s
}

fn cell_box(s: &mut String, x: f64, y: f64, w: f64, h: f64, fill: &str) {
    let _ = writeln!(
        s,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{fill}" stroke="#c8c8c8"/>"##
    );
}

fn write_lines(s: &mut String, x: f64, y: f64, lines: &[Text]) {
    for (i, t) in lines.iter().enumerate() {
        let weight = if t.bold { r#" font-weight="bold""# } else { "" };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{}"{weight} xml:space="preserve">{}</text>"#,
            x + PAD,
            y + PAD + LINE_H * (i as f64 + 1.0) - 3.0,
            t.colour,
            escape(&t.text)
        );
    }
}

/// A self-contained page around the SVG.
fn html_page(svg: &str, title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n</head>\n<body style=\"margin:16px;font-family:sans-serif\">\n\
         <p>One column per loop iteration (its time since the loop started, the syscall, \
         what came back), one row per fd. In each cell: what the loop asked the kernel for \
         that fd, what the kernel reported, which handler ran and why, and where the fd was \
         opened and closed. Scroll sideways for later iterations.</p>\n\
         <div style=\"overflow-x:auto\">\n{svg}</div>\n</body>\n</html>\n",
        t = escape(title)
    )
}
