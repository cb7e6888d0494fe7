//! Signal registration for [`crate::sources::Signals`]: the OS-level
//! handler, and putting back what was there before.
//!
//! The handler is registered through `signal-hook-registry`, which installs
//! one `sigaction` handler per signal for the whole process and chains the
//! handler that was there before (so a handler installed by other code
//! keeps running). Our action, run inside that handler, does two
//! async-signal-safe things only: it sets an atomic flag ("this signal was
//! raised") and writes to the source's wake-up fd ([`WakeWriter`]).
//!
//! The registry never uninstalls its handler: removing the last action
//! leaves a handler that calls only the chained previous one. For a signal
//! whose previous disposition was a handler function that is exactly the
//! old behaviour; for `SIG_DFL` and `SIG_IGN` it is not (a `SIGTERM` would
//! be ignored instead of ending the process). So this module remembers the
//! disposition it saw before the registry's handler went in, and when the
//! last [`SignalRegistration`] of the crate for that signal is dropped, it
//! puts `SIG_DFL`/`SIG_IGN` back, provided the registry's handler is still
//! the one installed (if other code replaced it meanwhile, it is left
//! alone). A later registration re-installs the registry's handler.
//!
//! Limit: actions that other code registered through `signal-hook-registry`
//! for the same signal after the crate's first registration stop running
//! once that default is restored, as the registry cannot be asked whether
//! any are left. Keep one `Signals` alive for such a signal, or register
//! everything through the crate.

use super::wake::WakeWriter;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What a signal handler reaches: one "raised" flag per registered signal,
/// and the fd that wakes the loop.
#[derive(Debug)]
pub(crate) struct SignalSink {
    /// `raised[i]` is set when the `i`th signal of the source arrives; the
    /// loop swaps it back to `false` when it delivers the signal.
    pub(crate) raised: Box<[AtomicBool]>,
    /// Written after the flag is set.
    pub(crate) wake: WakeWriter,
}

/// One registered action; dropping it unregisters the action (and, for the
/// crate's last one on that signal, restores `SIG_DFL`/`SIG_IGN`, see the
/// module docs).
#[derive(Debug)]
pub(crate) struct SignalRegistration {
    signal: libc::c_int,
    id: Option<signal_hook_registry::SigId>,
}

/// What the crate knows about one signal's disposition.
struct Disposition {
    signal: libc::c_int,
    /// Live registrations of the crate for the signal.
    registrations: usize,
    /// The disposition before the registry installed its handler, if that
    /// happened at the crate's first registration (otherwise the registry
    /// was already there: nothing of ours to undo).
    original: Option<libc::sigaction>,
    /// The registry's handler, as installed.
    installed: Option<libc::sigaction>,
}

// SAFETY: libc::sigaction is plain data (a handler address, flags, a mask);
// the pointer-typed fields on some platforms are never dereferenced here.
unsafe impl Send for Disposition {}

static DISPOSITIONS: Mutex<Vec<Disposition>> = Mutex::new(Vec::new());

fn dispositions() -> std::sync::MutexGuard<'static, Vec<Disposition>> {
    DISPOSITIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current `sigaction` of `signal`.
fn query(signal: libc::c_int) -> io::Result<libc::sigaction> {
    // SAFETY: sigaction is a plain C struct for which all-zero is a valid
    // value; it is only written by the kernel below.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, a
    // valid, writable sigaction.
    super::cvt(unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) })?;
    Ok(old)
}

/// Installs `action` for `signal`.
fn install(signal: libc::c_int, action: &libc::sigaction) -> io::Result<()> {
    // SAFETY: `action` is a disposition this module read from the kernel
    // earlier (SIG_DFL, SIG_IGN, or the registry's handler, whose code and
    // data live for the whole process), so installing it again is sound.
    super::cvt(unsafe { libc::sigaction(signal, action, std::ptr::null_mut()) })?;
    Ok(())
}

fn is_default_or_ignore(action: &libc::sigaction) -> bool {
    action.sa_sigaction == libc::SIG_DFL || action.sa_sigaction == libc::SIG_IGN
}

/// Registers `sink` for `signal`: when it arrives, `sink.raised[index]` is
/// set and `sink.wake` written.
pub(crate) fn register(
    signal: libc::c_int,
    sink: &Arc<SignalSink>,
    index: usize,
) -> io::Result<SignalRegistration> {
    if signal_hook_registry::FORBIDDEN.contains(&signal) || signal <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} cannot be handled (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV and non-signals are refused)"),
        ));
    }
    let mut table = dispositions();
    // First, as it also checks that the number is a signal this process
    // may handle (glibc keeps 32 and 33 for itself): nothing is recorded
    // for a refused one.
    let before = query(signal).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signal} cannot be handled: {e}"),
        )
    })?;
    let position = match table.iter().position(|d| d.signal == signal) {
        Some(p) => p,
        None => {
            table.push(Disposition {
                signal,
                registrations: 0,
                original: None,
                installed: None,
            });
            table.len() - 1
        }
    };
    let record = &mut table[position];
    if record.registrations == 0 {
        if let (Some(original), Some(installed)) = (&record.original, &record.installed) {
            // The crate restored `original` when its last registration went.
            // Put the registry's handler back, unless other code installed
            // its own since (then ours would replace it; leave it).
            if before.sa_sigaction == original.sa_sigaction {
                install(signal, installed)?;
            }
        }
    }
    let action_sink = Arc::clone(sink);
    let action = move || {
        if let Some(flag) = action_sink.raised.get(index) {
            flag.store(true, Ordering::SeqCst);
        }
        let _ = action_sink.wake.wake();
    };
    // SAFETY: the action is async-signal-safe: an atomic store, one
    // write(2) through `WakeWriter::wake` (nix's write: the syscall and an
    // errno read; the registry saves and restores errno around actions),
    // no allocation, no lock, no panic (`get` instead of indexing). The
    // Arc it owns is only dereferenced, never dropped, inside the handler;
    // the registry drops unregistered actions outside of any handler.
    let id = unsafe { signal_hook_registry::register(signal, action) }?;
    if record.installed.is_none() {
        let after = query(signal)?;
        if after.sa_sigaction != before.sa_sigaction {
            record.original = Some(before);
            record.installed = Some(after);
        }
    }
    record.registrations += 1;
    Ok(SignalRegistration {
        signal,
        id: Some(id),
    })
}

impl Drop for SignalRegistration {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        signal_hook_registry::unregister(id);
        let mut table = dispositions();
        let Some(record) = table.iter_mut().find(|d| d.signal == self.signal) else {
            return;
        };
        record.registrations = record.registrations.saturating_sub(1);
        if record.registrations > 0 {
            return;
        }
        let (Some(original), Some(installed)) = (&record.original, &record.installed) else {
            return;
        };
        if !is_default_or_ignore(original) {
            // The registry still chains the old handler function: as before.
            return;
        }
        match query(self.signal) {
            Ok(now) if now.sa_sigaction == installed.sa_sigaction => {
                if let Err(e) = install(self.signal, original) {
                    log::warn!(
                        "cannot restore the previous disposition of signal {}: {e}",
                        self.signal
                    );
                }
            }
            // Replaced by other code since, or unreadable: leave it.
            _ => {}
        }
    }
}

/// Whether `signal`'s disposition is `SIG_DFL` (`Some(true)`), `SIG_IGN`
/// (`Some(false)`), or a handler function (`None`).
#[cfg(test)]
pub(crate) fn is_default(signal: libc::c_int) -> Option<bool> {
    let action = query(signal).ok()?;
    if action.sa_sigaction == libc::SIG_DFL {
        Some(true)
    } else if action.sa_sigaction == libc::SIG_IGN {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(n: usize) -> Arc<SignalSink> {
        let (wake, _reader) = WakeWriter::pipe().unwrap();
        Arc::new(SignalSink {
            raised: (0..n).map(|_| AtomicBool::new(false)).collect(),
            wake,
        })
    }

    #[test]
    fn forbidden_signals_are_an_error_not_a_panic() {
        let s = sink(1);
        for signal in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, -3] {
            let err = register(signal, &s, 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        // Numbers the kernel (or libc) refuses: named in the error, and
        // nothing recorded for them.
        for signal in [32, 65, 1000] {
            let err = register(signal, &s, 0).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signal}");
            assert!(
                err.to_string().contains(&format!("signal {signal}")),
                "{err}"
            );
            assert!(
                !dispositions().iter().any(|d| d.signal == signal),
                "a record was left for {signal}"
            );
        }
    }

    /// SIGURG (default: ignore) is used by no other test of this binary.
    #[test]
    fn last_drop_restores_sig_dfl_and_a_new_registration_reinstalls() {
        let signal = libc::SIGURG;
        assert_eq!(is_default(signal), Some(true));
        let s = sink(1);
        let a = register(signal, &s, 0).unwrap();
        let b = register(signal, &s, 0).unwrap();
        assert_eq!(is_default(signal), None, "no handler installed");
        drop(a);
        assert_eq!(is_default(signal), None, "restored while one is left");
        drop(b);
        assert_eq!(is_default(signal), Some(true), "SIG_DFL not restored");
        let c = register(signal, &s, 0).unwrap();
        assert_eq!(is_default(signal), None, "handler not reinstalled");
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGURG).unwrap();
        assert!(
            s.raised[0].load(Ordering::SeqCst),
            "reinstalled handler did not run"
        );
        drop(c);
        assert_eq!(is_default(signal), Some(true));
    }

    /// SIGPROF (used by no other test of this binary) set to SIG_IGN
    /// first: SIG_IGN is what comes back.
    #[test]
    fn last_drop_restores_sig_ign() {
        let signal = libc::SIGPROF;
        let mut ignore = query(signal).unwrap();
        ignore.sa_sigaction = libc::SIG_IGN;
        install(signal, &ignore).unwrap();
        assert_eq!(is_default(signal), Some(false));
        let s = sink(1);
        let r = register(signal, &s, 0).unwrap();
        assert_eq!(is_default(signal), None, "no handler installed");
        drop(r);
        assert_eq!(is_default(signal), Some(false), "SIG_IGN not restored");
    }
}
