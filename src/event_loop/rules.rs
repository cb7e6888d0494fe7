//! The event rules: how readiness reported by select(2), poll(2) or epoll(7) becomes
//! `handle_*` calls (asyncore's `readwrite`, `read`, `write`, `_exception`
//! and the dispatcher's `handle_*_event` methods), and how handler errors are
//! routed.
//!
//! | readiness | channel state | handler called |
//! |---|---|---|
//! | read (`POLLIN`) | accepting | `handle_accept` |
//! | read (`POLLIN`) | connecting | `handle_connect` (if `SO_ERROR` is 0), then `handle_read` |
//! | read (`POLLIN`) | otherwise | `handle_read` |
//! | write (`POLLOUT`) | accepting | nothing |
//! | write (`POLLOUT`) | connecting | `handle_connect` (if `SO_ERROR` is 0), then `handle_write` |
//! | write (`POLLOUT`) | otherwise | `handle_write` |
//! | except set (`POLLPRI`) | `SO_ERROR` set | `handle_close` |
//! | except set (`POLLPRI`) | otherwise | `handle_expt` |
//! | `POLLHUP`, `POLLERR` without `POLLIN` | | `handle_close` |
//! | `POLLHUP`, `POLLERR` with `POLLIN` | | `handle_read` only: data may be left to read; `recv` returns 0 (or the error) at the end, and that is the close |
//! | `POLLNVAL` (poll), `EBADF` (select), `EBADF` from `epoll_ctl` | the fd was closed behind the channel's back | `handle_error` (`EBADF`), and the channel is removed |
//! | the channel's deadline passed | lingering ([`Dispatcher::linger_close`](crate::Dispatcher::linger_close)) | nothing: the channel is closed |
//! | the channel's deadline passed | otherwise | `handle_timeout` |
//! | a graceful shutdown began | | `handle_shutdown` |
//! | fd ≥ `FD_SETSIZE` (select only) | | `handle_error` ([`crate::sys::FdSetSizeError`]), and the channel is closed: select can never watch it |
//!
//! After each handler: if it returned an error, `WouldBlock` is ignored, an
//! error that means "peer gone" ([`DISCONNECTED`](crate::DISCONNECTED)) goes
//! to `handle_close`, and any other to `handle_error`. If `recv`/`send` saw
//! the peer go, `handle_close` runs next. Once the channel is closed (or the
//! loop was told to exit), none of its remaining events of the iteration is
//! delivered.

use super::context::Context;
use crate::backend::readiness::Readiness;
use crate::channel::{Channel, Predicates};
use crate::dispatcher::{is_disconnected, CloseReason};
use crate::map::{Map, Token};
use crate::sys::{FdSetSizeError, PollFlags};
use std::io;
use std::os::fd::RawFd;

/// What the loop learned about one registered channel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Event {
    /// The syscall's readiness, as poll(2) bits (select's sets and epoll's
    /// events are mapped onto them).
    Ready(Readiness),
    /// The fd was closed while registered (POLLNVAL, EBADF from select or
    /// epoll_ctl).
    FdClosed(&'static str),
    /// select(2) cannot watch this fd.
    FdTooLarge(FdSetSizeError),
    /// The channel's deadline passed.
    Timeout,
    /// A graceful shutdown began.
    Shutdown,
    /// The backend refused to watch the fd for another reason (`ENOMEM`,
    /// `ENOSPC`): the errno, so that an event stays a plain `Copy` value.
    RegisterFailed(i32),
}

#[derive(Clone, Copy)]
enum Hook {
    Read,
    Write,
    Expt,
    Close,
    Timeout,
    Shutdown,
}

/// Delivers `event` to channel `token`, if it is still the channel that was
/// registered when the syscall was made; a stale token (the channel closed
/// earlier in this iteration, maybe its fd already reused) is dropped.
/// Returns whether the channel is still in the map afterwards.
pub(crate) fn dispatch(
    map: &mut Map,
    exit: &mut bool,
    token: Token,
    fd: RawFd,
    event: Event,
) -> bool {
    match dispatch_and_check(map, exit, token, fd, event, false) {
        Some(outcome) => outcome != Outcome::Closed,
        None => {
            trace_stale(fd);
            false
        }
    }
}

/// The trace line of an event dropped because its channel closed earlier
/// in this iteration.
pub(crate) fn trace_stale(fd: RawFd) {
    log::trace!("fd {fd}: stale event for a channel closed earlier in this iteration, dropped");
}

/// [`dispatch`], and with `check`, for a channel that takes the fast path
/// ([`Predicates::AfterOwnEvents`](crate::Predicates)), compares what it
/// wants afterwards with what it wanted when the loop last asked
/// ([`Channel::wants_changed`]), while it is still in hand. Returns `None`
/// for a stale token (nothing delivered, nothing logged), else what became
/// of the channel: [`Outcome::Changed`] when it may want something else
/// (its handler's answers, its fd, its connection state or accept pause
/// changed, or it has a deadline the timer queue does not know), to be
/// asked again at the next iteration; [`Outcome::Closed`] when it left the
/// map.
///
/// One virtual call per event ([`Channel::on_event`]): the rules below are
/// generic, instantiated for each entry's dispatcher and handler types, so
/// every hook they call is a direct call the compiler can inline.
#[inline]
pub(crate) fn dispatch_and_check(
    map: &mut Map,
    exit: &mut bool,
    token: Token,
    fd: RawFd,
    event: Event,
    check: bool,
) -> Option<Outcome> {
    let mut ch = map.take(token)?;
    let removals = map.removals();
    let outcome = {
        let mut cx = Context::new(map, token, exit);
        ch.on_event(fd, event, &mut cx, check, removals)
    };
    if map.put_back(token, ch, outcome == Outcome::Closed) {
        Some(outcome)
    } else {
        Some(Outcome::Closed)
    }
}

/// What became of a channel after one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Still open, and (as far as it was checked) wanting what it wanted.
    Unchanged,
    /// Still open, and maybe wanting something else than it is
    /// registered for (see [`dispatch_and_check`]): asked again at the next
    /// iteration.
    Changed,
    /// Closed: it leaves the map.
    Closed,
}

/// The event rules for one event of one channel, then (with `check`) the
/// fast path's check of its wishes against those last seen. `removals` is
/// the map's count of removed channels before the handlers ran (an EMFILE
/// accept pause waits for one).
#[inline]
pub(crate) fn on_event<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    event: Event,
    cx: &mut Context<'_>,
    check: bool,
    removals: u64,
) -> Outcome {
    if ch.dispatcher().is_closed() {
        // Closed by another handler through `get_mut(..).close()` since
        // the syscall: it gets nothing more, and leaves the map now.
        trace_stale(fd);
        return Outcome::Closed;
    }
    readwrite(ch, fd, event, cx);
    // An accept that failed with EMFILE just now waits for a channel to
    // close; one that closes later in this very pass counts too.
    let d = ch.dispatcher_mut();
    d.stamp_accept_pause(removals);
    if d.is_closed() {
        if fd >= 0 {
            log::trace!("fd {fd}: closed, removed from the map");
        }
        Outcome::Closed
    } else if check && ch.predicates() == Predicates::AfterOwnEvents && ch.wants_changed() {
        // (A handler with `Predicates::EveryIteration` is asked again at
        // the next iteration anyway. A connecting socket or a paused
        // listener is too, but is checked here all the same: its wishes
        // leave that state through this check.)
        Outcome::Changed
    } else {
        Outcome::Unchanged
    }
}

#[inline]
fn readwrite<C: Channel + ?Sized>(ch: &mut C, fd: RawFd, event: Event, cx: &mut Context<'_>) {
    // Readiness first: it is what nearly every event is.
    let ready = match event {
        Event::Ready(r) if !r.flags.intersects(PollFlags::POLLNVAL) => r,
        other => return other_event(ch, fd, other, cx),
    };
    let flags = ready.flags;
    if flags
        & (PollFlags::POLLIN
            | PollFlags::POLLOUT
            | PollFlags::POLLPRI
            | PollFlags::POLLHUP
            | PollFlags::POLLERR)
        == PollFlags::POLLIN
        && ch.dispatcher().connected()
    {
        // The common case, first: data for a connected channel. The steps
        // below give the same calls for it; taking them costs about 50 more
        // instructions per event (368 against 315 per round trip on
        // `--pass instructions`), as the step list is built and walked.
        log::trace!("fd {fd}: {ready} -> handle_read");
        let result = ch.handle_read(cx);
        return after_step(ch, fd, Hook::Read, result, cx);
    }
    // The steps this readiness calls for, in asyncore's order: read, write,
    // expt. With POLLIN, a hang-up is left to the read: the peer may have
    // written more than one `recv` takes before it went (a pipe whose
    // writer exited, a Unix socket after `shutdown`), and asyncore's
    // close-at-once loses that tail. `recv` drains it over the next passes,
    // returns 0 at the end, and that is the close. Without POLLIN there is
    // nothing to read: close now.
    let mut hooks = [Hook::Read; 4];
    let mut n = 0;
    for (flag, hook) in [
        (PollFlags::POLLIN, Hook::Read),
        (PollFlags::POLLOUT, Hook::Write),
        (PollFlags::POLLPRI, Hook::Expt),
    ] {
        if flags.intersects(flag) {
            hooks[n] = hook;
            n += 1;
        }
    }
    if !flags.intersects(PollFlags::POLLIN)
        && flags.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
    {
        hooks[n] = Hook::Close;
        n += 1;
    }
    for (i, &hook) in hooks[..n].iter().enumerate() {
        // After a step, the rest only if the channel is still open and the
        // loop is not exiting.
        if i > 0 && finished(ch, cx) {
            return;
        }
        step(ch, fd, hook, &ready, cx);
    }
}

/// Every event but readiness: what the loop itself found (a closed or
/// unwatchable fd, a deadline, a shutdown).
fn other_event<C: Channel + ?Sized>(ch: &mut C, fd: RawFd, event: Event, cx: &mut Context<'_>) {
    match event {
        Event::FdTooLarge(err) => {
            log::trace!(
                "fd {fd}: out of range for select (FD_SETSIZE is {}) -> handle_error, channel closed",
                err.limit
            );
            ch.handle_error(err.into(), cx);
            // select(2) can never watch this fd. A handle_error that keeps
            // the channel would have it reported again on every pass: it
            // leaves the map, as on POLLNVAL.
            ch.dispatcher_mut().close();
        }
        Event::FdClosed(cause) => fd_closed(ch, fd, cause, cx),
        Event::RegisterFailed(errno) => {
            let err = io::Error::from_raw_os_error(errno);
            log::trace!(
                "fd {fd}: the backend cannot watch it ({err}) -> handle_error, channel closed"
            );
            ch.handle_error(err, cx);
            ch.dispatcher_mut().close();
        }
        Event::Timeout if ch.dispatcher().is_lingering() => {
            // The deadline is the lingering close's own (the handler's
            // `handle_timeout` may not close): the peer never sent its
            // end of file in time.
            log::trace!("fd {fd}: lingering close ran out of time -> channel closed");
            ch.dispatcher_mut().close();
        }
        Event::Timeout => step(ch, fd, Hook::Timeout, &"deadline passed", cx),
        Event::Shutdown => step(ch, fd, Hook::Shutdown, &"graceful shutdown", cx),
        // Only POLLNVAL readiness comes here.
        Event::Ready(_) => fd_closed(ch, fd, "POLLNVAL", cx),
    }
}

/// The trace line of a `recv` or `send` that found the peer gone: a clean
/// end of file, or the error it was (a reset is not an end of file).
fn trace_peer_gone(d: &crate::Dispatcher, fd: RawFd) {
    if !log::log_enabled!(log::Level::Trace) {
        return;
    }
    let errno = match d.close_reason() {
        Some(CloseReason::Reset) => libc::ECONNRESET,
        Some(CloseReason::Gone(errno)) => errno,
        Some(CloseReason::Eof) | None => {
            return log::trace!("fd {fd}: peer closed (recv returned 0) -> handle_close");
        }
    };
    let err = io::Error::from_raw_os_error(errno);
    log::trace!("fd {fd}: {err} -> handle_close");
}

/// The channel closed or the loop is exiting: deliver nothing more.
#[inline]
fn finished<C: Channel + ?Sized>(ch: &C, cx: &Context<'_>) -> bool {
    ch.dispatcher().is_closed() || cx.stopping()
}

fn hook_name(hook: Hook) -> &'static str {
    match hook {
        Hook::Read => "handle_read",
        Hook::Write => "handle_write",
        Hook::Expt => "handle_expt",
        Hook::Close => "handle_close",
        Hook::Timeout => "handle_timeout",
        Hook::Shutdown => "handle_shutdown",
    }
}

#[inline]
fn step<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    hook: Hook,
    cause: &dyn std::fmt::Display,
    cx: &mut Context<'_>,
) {
    let result = match hook {
        Hook::Read => read_event(ch, fd, cause, cx),
        Hook::Write => write_event(ch, fd, cause, cx),
        Hook::Expt => expt_event(ch, fd, cause, cx),
        Hook::Close | Hook::Timeout | Hook::Shutdown => {
            if fd < 0 {
                log::trace!("timer: {cause} -> {}", hook_name(hook));
            } else {
                log::trace!("fd {fd}: {cause} -> {}", hook_name(hook));
            }
            match hook {
                Hook::Close => ch.handle_close(cx),
                Hook::Timeout => ch.handle_timeout(cx),
                _ => ch.handle_shutdown(cx),
            }
        }
    };
    after_step(ch, fd, hook, result, cx)
}

/// After a handler: its error routed, then `handle_close` if `recv` or
/// `send` saw the peer go.
#[inline]
fn after_step<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    hook: Hook,
    result: io::Result<()>,
    cx: &mut Context<'_>,
) {
    if let Err(err) = result {
        route_error(ch, fd, hook, err, cx);
    }
    if ch.dispatcher_mut().take_close_pending() && !finished(ch, cx) {
        trace_peer_gone(ch.dispatcher(), fd);
        if let Err(err) = ch.handle_close(cx) {
            route_error(ch, fd, Hook::Close, err, cx);
        }
        ch.dispatcher_mut().take_close_pending();
    }
}

/// asyncore's `readwrite` error rule.
#[cold]
fn route_error<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    hook: Hook,
    err: io::Error,
    cx: &mut Context<'_>,
) {
    if finished(ch, cx) {
        log::debug!("fd {fd}: error after close ignored: {err}");
    } else if err.kind() == io::ErrorKind::WouldBlock {
        // Not a spurious wake-up: the usual case is a handler that read (or
        // wrote) until the kernel had nothing more, in the same event.
        log::trace!(
            "fd {fd}: {} returned WouldBlock (nothing more to do now), ignored",
            hook_name(hook)
        );
    } else {
        let to = if is_disconnected(&err) {
            "handle_close"
        } else {
            "handle_error"
        };
        log::trace!("fd {fd}: {err} -> {to}");
        deliver_error(ch, fd, err, cx);
    }
}

/// An error that means "peer gone" goes to `handle_close`, any other to
/// `handle_error`.
fn deliver_error<C: Channel + ?Sized>(ch: &mut C, fd: RawFd, err: io::Error, cx: &mut Context<'_>) {
    if is_disconnected(&err) {
        if let Err(err) = ch.handle_close(cx) {
            if !finished(ch, cx) {
                log::trace!("fd {fd}: handle_close failed -> handle_error");
                ch.handle_error(err, cx);
            }
        }
    } else {
        ch.handle_error(err, cx);
    }
}

#[cold]
fn connect_event<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    cause: &dyn std::fmt::Display,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    if let Err(err) = ch.dispatcher_mut().finish_connect() {
        let to = if is_disconnected(&err) {
            "handle_close"
        } else {
            "handle_error"
        };
        log::trace!("fd {fd}: {cause}: connect failed ({err}) -> {to}");
        deliver_error(ch, fd, err, cx);
        return Ok(());
    }
    log::trace!("fd {fd}: {cause} -> handle_connect");
    ch.handle_connect(cx)
}

/// A connecting socket's first event completes the connect (asyncore's
/// `handle_connect_event`) before the read or write it announces. Returns
/// whether that read or write is still to be delivered: not if the channel
/// finished, or the connect failed (its error went to the handler already).
fn connect_first<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    cause: &dyn std::fmt::Display,
    cx: &mut Context<'_>,
) -> io::Result<bool> {
    let d = ch.dispatcher();
    if d.connected() || !d.connecting() {
        return Ok(true);
    }
    connect_event(ch, fd, cause, cx)?;
    Ok(!finished(ch, cx) && ch.dispatcher().connected())
}

#[inline]
fn read_event<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    cause: &dyn std::fmt::Display,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    let d = ch.dispatcher();
    if d.accepting() {
        log::trace!("fd {fd}: {cause} -> handle_accept");
        return ch.handle_accept(cx);
    }
    if d.connecting() && !connect_first(ch, fd, cause, cx)? {
        return Ok(());
    }
    log::trace!("fd {fd}: {cause} -> handle_read");
    ch.handle_read(cx)
}

fn write_event<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    cause: &dyn std::fmt::Display,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    let d = ch.dispatcher();
    if d.accepting() {
        log::trace!("fd {fd}: {cause} on a listening socket, ignored");
        return Ok(());
    }
    if d.connecting() && !connect_first(ch, fd, cause, cx)? {
        return Ok(());
    }
    log::trace!("fd {fd}: {cause} -> handle_write");
    ch.handle_write(cx)
}

fn expt_event<C: Channel + ?Sized>(
    ch: &mut C,
    fd: RawFd,
    cause: &dyn std::fmt::Display,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    if let Some(err) = ch.dispatcher().take_error()? {
        log::trace!("fd {fd}: {cause} with SO_ERROR ({err}) -> handle_close");
        return ch.handle_close(cx);
    }
    log::trace!("fd {fd}: {cause} -> handle_expt");
    ch.handle_expt(cx)
}

/// The fd was closed behind the channel's back. The number may already
/// belong to another file, so it is forgotten, not closed again; the channel
/// hears of it through `handle_error` and leaves the map in any case (else
/// poll would report `POLLNVAL` forever: a 100% CPU spin).
#[cold]
fn fd_closed<C: Channel + ?Sized>(ch: &mut C, fd: RawFd, cause: &str, cx: &mut Context<'_>) {
    log::trace!("fd {fd}: {cause} -> handle_error, channel removed");
    ch.dispatcher_mut().forget_fd();
    let err = io::Error::other(format!(
        "fd {fd} was closed while registered with the loop ({cause}); channel removed"
    ));
    ch.handle_error(err, cx);
}

#[cfg(test)]
mod tests {
    //! asyncore's `test_readwrite` and `test_readwriteexc`: each poll flag on
    //! its own calls exactly the handler it maps to; a failing handler goes
    //! to `handle_error`; `exit` (ExitNow) stops the rest of the pass.
    use super::*;
    use crate::{Dispatcher, Handler, Map};
    use std::cell::RefCell;
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;

    type Log = Rc<RefCell<Vec<&'static str>>>;

    struct Obj {
        log: Log,
        fail: bool,
        exit: bool,
    }

    impl Obj {
        fn event(&mut self, name: &'static str, cx: &mut Context<'_>) -> io::Result<()> {
            self.log.borrow_mut().push(name);
            if self.exit {
                cx.exit();
            }
            if self.fail {
                return Err(io::Error::other("crash"));
            }
            Ok(())
        }
    }

    impl Handler for Obj {
        fn handle_read(&mut self, _ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
            self.event("read", cx)
        }
        fn handle_write(&mut self, _ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
            self.event("write", cx)
        }
        fn handle_expt(&mut self, _ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
            self.event("expt", cx)
        }
        fn handle_close(&mut self, _ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
            self.event("closed", cx)
        }
        fn handle_error(&mut self, _ch: &mut Dispatcher, _e: io::Error, _cx: &mut Context<'_>) {
            self.log.borrow_mut().push("error_handled");
        }
    }

    /// Delivers `flags` to a fresh channel on a healthy socket; returns what
    /// its handler saw.
    fn deliver(flags: PollFlags, fail: bool, exit: bool) -> Vec<&'static str> {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut map = Map::new();
        let log = Log::default();
        let obj = Obj {
            log: log.clone(),
            fail,
            exit,
        };
        let d = Dispatcher::from_socket(a).unwrap();
        let fd = d.fileno().unwrap();
        let t = map.add(d, obj);
        let ready = Readiness {
            flags,
            syscall: crate::backend::readiness::Syscall::Poll,
        };
        let mut exit_now = false;
        dispatch(&mut map, &mut exit_now, t.token(), fd, Event::Ready(ready));
        assert_eq!(exit_now, exit);
        let seen = log.borrow().clone();
        if flags.intersects(PollFlags::POLLNVAL) {
            assert!(!map.contains(t), "POLLNVAL removes the channel");
        }
        seen
    }

    #[test]
    fn each_flag_calls_exactly_its_handler() {
        let expected = [
            (PollFlags::POLLIN, "read"),
            (PollFlags::POLLPRI, "expt"),
            (PollFlags::POLLOUT, "write"),
            (PollFlags::POLLERR, "closed"),
            (PollFlags::POLLHUP, "closed"),
            // Unlike asyncore (handle_close), a closed-behind-our-back fd is
            // an error: the channel did not close, something else did.
            (PollFlags::POLLNVAL, "error_handled"),
        ];
        for (flag, want) in expected {
            assert_eq!(deliver(flag, false, false), [want], "{flag}");
        }
    }

    #[test]
    fn a_failing_handler_goes_to_handle_error() {
        for flag in [
            PollFlags::POLLIN,
            PollFlags::POLLPRI,
            PollFlags::POLLOUT,
            PollFlags::POLLERR,
            PollFlags::POLLHUP,
        ] {
            let seen = deliver(flag, true, false);
            assert_eq!(seen.len(), 2, "{flag}: {seen:?}");
            assert_eq!(seen[1], "error_handled", "{flag}: {seen:?}");
        }
    }

    #[test]
    fn exit_stops_the_rest_of_the_pass() {
        let all = PollFlags::POLLOUT | PollFlags::POLLPRI | PollFlags::POLLHUP;
        assert_eq!(deliver(all, false, false), ["write", "expt", "closed"]);
        assert_eq!(deliver(all, false, true), ["write"]);
        let all = PollFlags::POLLIN | PollFlags::POLLOUT | PollFlags::POLLPRI;
        assert_eq!(deliver(all, false, false), ["read", "write", "expt"]);
        assert_eq!(deliver(all, false, true), ["read"]);
    }

    /// Unlike asyncore, a hang-up that comes with data is not a close yet:
    /// the data is read first, and `recv` returning 0 closes.
    #[test]
    fn hangup_with_data_reads_instead_of_closing() {
        for hup in [PollFlags::POLLHUP, PollFlags::POLLERR] {
            assert_eq!(deliver(PollFlags::POLLIN | hup, false, false), ["read"]);
        }
    }
}
