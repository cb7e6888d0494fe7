//! SIGPIPE: a write to a closed pipe or socket must never kill the process.

use std::sync::Once;

static IGNORE: Once = Once::new();

/// Sets SIGPIPE to "ignore" if it has its default action ("terminate"),
/// once per process. A handler the program installed itself is left alone.
pub(crate) fn ignore_sigpipe_once() {
    IGNORE.call_once(|| {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_IGN runs no code in signal context. If a
        // handler other than SIG_DFL was installed we put it back at once.
        if let Ok(old) = unsafe { sigaction(Signal::SIGPIPE, &ignore) } {
            if !matches!(old.handler(), SigHandler::SigDfl) {
                // SAFETY: restores exactly what was installed before.
                let _ = unsafe { sigaction(Signal::SIGPIPE, &old) };
            }
        }
    });
}
