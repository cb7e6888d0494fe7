//! A capture of the `log` facade, per thread: tests running in parallel in
//! one binary each read only what their own thread (their own loop)
//! logged. One logger per process, installed once by [`install`].

use std::sync::{Mutex, Once};
use std::thread::{self, ThreadId};

/// One captured record.
struct Captured {
    thread: ThreadId,
    level: log::Level,
    target: String,
    message: String,
}

static RECORDS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let captured = Captured {
                thread: thread::current().id(),
                level: r.level(),
                target: r.target().to_string(),
                message: r.args().to_string(),
            };
            RECORDS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(captured);
        }
    }
    fn flush(&self) {}
}

/// Installs the capture for the whole process, keeping records up to
/// `max` (`Warn` for the unhandled-event warnings, `Trace` for the loop's
/// trace). The first call's `max` holds: a test binary calls it with one
/// level only.
pub fn install(max: log::LevelFilter) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(max);
    });
}

/// The messages this thread logged at `level`, oldest first.
pub fn my_records(level: log::Level) -> Vec<String> {
    mine(|c| c.level == level)
}

/// The messages this thread logged from a target starting with `prefix`
/// (any level), oldest first.
pub fn my_lines(prefix: &str) -> Vec<String> {
    mine(|c| c.target.starts_with(prefix))
}

fn mine(keep: impl Fn(&Captured) -> bool) -> Vec<String> {
    let me = thread::current().id();
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|c| c.thread == me && keep(c))
        .map(|c| c.message.clone())
        .collect()
}

/// Asserts this thread logged, at `level`, a message containing `needle`;
/// `what` names the case in the failure message.
#[track_caller]
pub fn assert_logged(level: log::Level, needle: &str, what: &dyn std::fmt::Display) {
    let recs = my_records(level);
    assert!(
        recs.iter().any(|m| m.contains(needle)),
        "{what}: no {level} record containing {needle:?}; got {recs:?}"
    );
}
