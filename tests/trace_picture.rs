//! The `trace_picture` example as a process: it turns the recorded traces in
//! `tests/data/` (one per backend: select, poll, epoll) into an SVG image or
//! an HTML page that names every fd and every iteration of the trace, and
//! it refuses bad input with a one-line error, never a panic.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;

const TRACES: [&str; 3] = ["select.trace", "poll.trace", "epoll.trace"];

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(data(name)).expect("test trace")
}

/// Runs trace_picture with `args` and `stdin`; returns (exit code, stdout,
/// stderr), asserting it did not panic.
fn picture(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let (status, out, err) = run("trace_picture", args, stdin);
    assert!(!err.contains("panicked"), "trace_picture panicked:\n{err}");
    (
        status.code(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// The iteration numbers (`iteration N:`) and fds (`fd N:`, `fd=N`) of a
/// trace, found by a plain scan independent of the tool's parser.
fn iterations_and_fds(trace: &str) -> (BTreeSet<u64>, BTreeSet<i64>) {
    let number = |s: &str| -> String { s.chars().take_while(char::is_ascii_digit).collect() };
    let (mut its, mut fds) = (BTreeSet::new(), BTreeSet::new());
    for line in trace.lines() {
        for (i, _) in line.match_indices("iteration ") {
            if let Ok(n) = number(&line[i + 10..]).parse() {
                its.insert(n);
            }
        }
        for pat in ["fd ", "fd="] {
            for (i, _) in line.match_indices(pat) {
                let digits = number(&line[i + 3..]);
                let after = line[i + 3 + digits.len()..].chars().next();
                let is_fd = pat == "fd=" || after == Some(':');
                if let (true, Ok(n)) = (is_fd, digits.parse()) {
                    fds.insert(n);
                }
            }
        }
    }
    (its, fds)
}

/// The labels of the trace's `fd F: opened: LABEL` lines.
fn labels(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter_map(|l| {
            l.split_once(": opened: ")
                .map(|(_, label)| label.trim().to_string())
        })
        .collect()
}

fn assert_names_everything(name: &str, out: &str) {
    let trace = read(name);
    let (its, fds) = iterations_and_fds(&trace);
    assert!(
        its.len() >= 5,
        "{name}: the test trace has too few iterations"
    );
    assert!(fds.len() >= 3, "{name}: the test trace has too few fds");
    for n in &its {
        assert!(
            out.contains(&format!(">iteration {n}<")),
            "{name}: iteration {n} is not in the picture"
        );
    }
    for fd in &fds {
        assert!(
            out.contains(&format!(">fd {fd}<")),
            "{name}: fd {fd} has no row in the picture"
        );
    }
    for label in labels(&trace) {
        // The label as the SVG escapes it (no `<`, `>` or `&` in these).
        assert!(out.contains(&label), "{name}: label {label:?} is missing");
    }
    // Every handler the trace names is in the picture.
    for line in trace.lines() {
        if let Some((_, handler)) = line.rsplit_once(" -> handle_") {
            let handler = format!("handle_{}", handler.split([',', ' ']).next().unwrap_or(""));
            assert!(out.contains(&handler), "{name}: {handler} is missing");
        }
    }
}

#[test]
fn svg_names_every_fd_and_every_iteration_of_each_backend() {
    for name in TRACES {
        let path = data(name);
        let (code, out, err) = picture(&["--svg", path.to_str().unwrap()], b"");
        assert_eq!(code, Some(0), "{name}: stderr:\n{err}");
        assert!(out.starts_with("<svg "), "{name}: not an SVG:\n{out:.200}");
        assert!(out.trim_end().ends_with("</svg>"), "{name}: SVG not closed");
        assert_names_everything(name, &out);
    }
}

#[test]
fn html_page_is_self_contained_and_names_everything() {
    for name in TRACES {
        let path = data(name);
        let (code, out, err) = picture(&[path.to_str().unwrap()], b"");
        assert_eq!(code, Some(0), "{name}: stderr:\n{err}");
        assert!(out.starts_with("<!DOCTYPE html>"), "{name}: not HTML");
        assert!(out.contains("<svg ") && out.contains("</html>"));
        // Self-contained: nothing is fetched from elsewhere.
        for outside in ["src=", "href=", "@import", "url("] {
            assert!(!out.contains(outside), "{name}: refers to {outside}");
        }
        assert_names_everything(name, &out);
    }
}

#[test]
fn reads_standard_input_without_a_file() {
    let trace = read("poll.trace");
    let (code, out, err) = picture(&["--svg"], trace.as_bytes());
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert_names_everything("poll.trace", &out);
}

#[test]
fn log_headers_and_other_log_lines_are_skipped() {
    // select.trace has env_logger headers on every line and INFO lines
    // between the trace lines.
    let trace = read("select.trace");
    assert!(trace.contains("[2026-12-01T23:50:00Z TRACE selectloop::event_loop]"));
    let (code, out, _) = picture(&["--svg"], trace.as_bytes());
    assert_eq!(code, Some(0));
    assert!(
        !out.contains("TRACE selectloop"),
        "a log header got into the picture"
    );
    assert!(
        !out.contains("Incoming connection"),
        "a non-trace line got in"
    );
    // What select was asked and answered, per fd.
    assert!(out.contains("asked: r x"));
    assert!(out.contains("ready: r w"));
    assert!(out.contains("closed, left the map"));
}

#[test]
fn first_and_last_pick_the_iterations_drawn() {
    let path = data("poll.trace");
    let (code, out, err) = picture(
        &[
            "--svg",
            "--first",
            "2",
            "--last",
            "3",
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(out.contains(">iteration 2<") && out.contains(">iteration 3<"));
    for n in [1, 4, 5, 6] {
        assert!(
            !out.contains(&format!(">iteration {n}<")),
            "iteration {n} drawn"
        );
    }
    let (code, _, err) = picture(&["--first", "40", path.to_str().unwrap()], b"");
    assert_eq!(code, Some(1));
    assert!(err.contains("no iteration in"), "stderr:\n{err}");
}

#[test]
fn bad_input_is_a_one_line_error() {
    let cases: [(&[u8], &str); 8] = [
        (b"", "no loop iteration found"),
        (b"hello\nthis is not a trace\n", "no loop iteration found"),
        (
            b"  pollfd fd=3 events=POLLIN\n",
            "line 1: `pollfd` line outside",
        ),
        (
            b"select(readfds={3, x}, writefds={}, exceptfds={}, timeout=none (block))\n",
            "line 1: `x` is not an fd number",
        ),
        (
            b"[+0.1s] iteration 1: poll(nfds=1, timeout=soon)\n",
            "line 1: `timeout=soon`: expected `none (block)` or seconds",
        ),
        (
            b"[+1.5] iteration 1: poll(nfds=1, timeout=none (block))\n",
            "line 1: `+1.5` is not a time since the start",
        ),
        (
            b"poll(nfds=1, timeout=0.5s)\n  pollfd fd=4 events=POLLIN\npoll -> 1 ready\n  pollfd fd=4 revents=POLLWHAT\n",
            "line 4: `POLLWHAT` is not a set of poll or epoll flags",
        ),
        (
            b"epoll_ctl(EPOLL_CTL_ADD, fd=5, events=EPOLLIN|SOON)\n",
            "line 1: `EPOLLIN|SOON` is not a set of poll or epoll flags",
        ),
    ];
    for (input, says) in cases {
        let (code, out, err) = picture(&[], input);
        assert_eq!(code, Some(1), "input {input:?}: stderr:\n{err}");
        assert!(out.is_empty(), "input {input:?}: wrote a picture anyway");
        assert_eq!(err.trim_end().lines().count(), 1, "stderr:\n{err}");
        assert!(err.contains(says), "input {input:?}: stderr {err:?}");
    }
    let (code, _, err) = picture(&["/nonexistent/trace.txt"], b"");
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read /nonexistent/trace.txt"), "{err}");
}

/// Lines a real run prints that are not trace lines, or trace lines that
/// are easy to misread: a log line holding a dispatcher's Debug text
/// (`fd=6>`) is skipped, and the poll entry of a channel that asks for
/// nothing (`pollfd fd=-1 (...)`) is drawn as such.
#[test]
fn log_lines_with_fd_text_and_skipped_poll_entries_draw() {
    let trace = b"[+0.000010s] iteration 1: poll(nfds=2, timeout=none (block))
  pollfd fd=4 events=POLLIN|POLLPRI
  pollfd fd=-1 (fd 7 asks for nothing: ignored)
[+0.100000s] poll -> 1 ready
  pollfd fd=4 revents=POLLIN
fd 4: POLLIN -> handle_read
[INFO  echo_server] closing an idle connection: <Dispatcher connected 127.0.0.1:5000 fd=6> (0 bytes queued)
";
    let (code, out, err) = picture(&["--svg"], trace);
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(out.contains("nothing (fd=-1)"), "{out:.400}");
}

#[test]
fn bad_arguments_exit_2() {
    assert_bad_args("trace_picture", &["--frobnicate"], "--frobnicate");
    assert_bad_args("trace_picture", &["--first", "x"], "--first");
}

/// The picture in the docs (`docs/echo-loop.svg`, inlined in the guide and
/// shown in the README) is exactly what the tool makes of the recorded
/// trace beside it, so it cannot drift from the tool. To redraw it:
/// `cargo run --example trace_picture -- --svg --title "$TITLE" docs/echo-trace.txt > docs/echo-loop.svg`
#[test]
fn the_docs_picture_is_the_tools_drawing_of_the_docs_trace() {
    const TITLE: &str = "echo_server on poll(2): connect, data, backpressure, close";
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let trace = root.join("docs/echo-trace.txt");
    let (code, out, err) = picture(&["--svg", "--title", TITLE, trace.to_str().unwrap()], b"");
    assert_eq!(code, Some(0), "stderr:\n{err}");
    let in_docs = std::fs::read_to_string(root.join("docs/echo-loop.svg")).unwrap();
    assert!(
        out == in_docs,
        "docs/echo-loop.svg is stale: redraw it (see this test's comment)"
    );
    // The story the docs tell about it: backpressure is fd 6 asking for
    // POLLOUT only, and the close is a plain POLLIN.
    assert!(out.contains("asked: POLLOUT<"));
    assert!(out.contains("closed, left the map"));
    // No blank line: the SVG is inlined in Markdown, where a blank line
    // would end the HTML block.
    assert!(!in_docs.contains("\n\n"));
}

/// A wait that timed out is drawn as such, with the time it returned.
#[test]
fn a_timeout_shows_in_the_iterations_header() {
    let path = data("select.trace");
    let (code, out, err) = picture(&["--svg", path.to_str().unwrap()], b"");
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(out.contains("select, timeout=0.500s"), "{out:.300}");
    assert!(out.contains("-&gt; 0 ready (timeout)"));
    assert!(out.contains("+1.700090s → +2.200301s"));
}

/// A trace recorded from a running example (echo_server with `--trace`, on
/// every backend) draws: every iteration and every fd the loop named.
#[test]
fn draws_a_trace_recorded_from_echo_server_on_every_backend() {
    use std::io::{Read, Write};
    for backend in BACKENDS {
        let mut server = Server::start(
            "echo_server",
            &["--bind", "127.0.0.1:0", backend, "--trace"],
        );
        let mut c = connect(server.addr);
        let me = c.local_addr().unwrap();
        c.write_all(b"picture me").unwrap();
        let mut echo = [0u8; 10];
        c.read_exact(&mut echo).unwrap();
        drop(c);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let err = server.proc.collect_stderr();
        server.proc.signal(libc::SIGTERM);
        assert!(server.proc.wait_timeout(PATIENCE).is_some());
        let trace = err.recv_timeout(PATIENCE).unwrap();

        let (code, out, perr) = picture(&["--svg"], trace.as_bytes());
        assert_eq!(code, Some(0), "{backend}: {perr}\ntrace:\n{trace}");
        assert!(out.contains("handle_accept") && out.contains("handle_read"));
        assert!(out.contains(">iteration 2<"), "{backend}");
        let (_, fds) = iterations_and_fds(&trace);
        for fd in fds {
            assert!(out.contains(&format!(">fd {fd}<")), "{backend}: fd {fd}");
        }
        if trace.contains(": opened: connection from") {
            assert!(out.contains(&format!("connection from {me}")), "{backend}");
        }
    }
}
