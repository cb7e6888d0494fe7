//! One test per hazard of DESIGN.md ("Where we must do better than
//! asyncore"), each named after the bug it pins and each run on both
//! backends. EMFILE on accept lives in its own binary (`tests/emfile.rs`)
//! because it lowers the process's fd limit; zero allocations per iteration
//! in `tests/alloc.rs` because it counts every allocation of its thread.
//!
//! Several tests need to know which fd number a socket has, or to put a new
//! file at the exact number a channel just gave up. They work in fd ranges
//! far above what the other tests of this binary use (the kernel hands out
//! the lowest free number), each test in its own range.

// The recording handler, the timeouts, the backend list and the stepped
// loop are shared (tests/common).
mod common;

use common::{events, fd_is_open, hook, lp, new_log, Recorder, LOOP_BACKENDS, PATIENCE};
use selectloop::sys::{self, FdSet, FdSetSizeError, PollFd, PollFlags, FD_SETSIZE};
use selectloop::{
    Backend, Context, Dispatcher, DispatcherWithSend, Handler, Loop, Map, Stop, Token,
};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

/// A duplicate of `fd` at the lowest free number at or above `base`.
fn dup_at_least(fd: impl AsFd, base: RawFd) -> OwnedFd {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(base)).unwrap();
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(raw) }
}

/// A connected Unix stream pair, the first end moved to an fd at or above
/// `base` (or left where it is for `base == 0`).
fn pair_at(base: RawFd) -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(PATIENCE)).unwrap();
    b.set_write_timeout(Some(PATIENCE)).unwrap();
    if base == 0 {
        return (a, b);
    }
    let high = dup_at_least(&a, base);
    drop(a);
    (UnixStream::from(high), b)
}

/// Makes sure the soft RLIMIT_NOFILE is at least `min`; false if it cannot.
fn ensure_nofile(min: u64) -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return false;
    };
    if soft >= min {
        return true;
    }
    if hard < min {
        return false;
    }
    setrlimit(Resource::RLIMIT_NOFILE, min, hard).is_ok()
}

// ---------------------------------------------------------------------------
// fd >= FD_SETSIZE on select
// ---------------------------------------------------------------------------

/// Python's select raises ValueError for an fd >= FD_SETSIZE and the whole
/// loop dies (nix's FdSet panics). Here only that channel hears of it, with
/// a typed error naming the fd, the limit and the way out; the other
/// channels are served in the same iteration and the loop goes on.
#[test]
fn fd_above_fd_setsize_is_a_per_channel_error_and_the_loop_goes_on() {
    let want = FD_SETSIZE as u64 + 512;
    if !ensure_nofile(want) {
        eprintln!("skipped: cannot raise RLIMIT_NOFILE to {want} to get an fd above FD_SETSIZE");
        return;
    }
    for backend in LOOP_BACKENDS {
        let (high, high_peer) = pair_at(FD_SETSIZE as RawFd + 100);
        let high_fd = high.as_raw_fd();
        assert!(high_fd as usize >= FD_SETSIZE);
        let (low, low_peer) = pair_at(0);
        (&high_peer).write_all(b"h").unwrap();
        (&low_peer).write_all(b"l").unwrap();
        let mut map = Map::new();
        let hlog = new_log();
        let typed = Rc::new(Cell::new(None::<FdSetSizeError>));
        let mut h = Recorder::new(&hlog)
            .readable(true)
            .writable(false)
            .discard_reads();
        let t2 = typed.clone();
        h.on_error = Some(Box::new(move |_ch, err| {
            t2.set(
                err.get_ref()
                    .and_then(|e| e.downcast_ref::<FdSetSizeError>())
                    .copied(),
            );
            assert!(
                err.to_string().contains("poll"),
                "the way out is named: {err}"
            );
        }));
        let ht = map.add(Dispatcher::from_socket(high).unwrap(), h);
        let llog = new_log();
        map.add(
            Dispatcher::from_socket(low).unwrap(),
            Recorder::new(&llog)
                .readable(true)
                .writable(false)
                .discard_reads(),
        );
        let stop = lp(backend)
            .count(1)
            .run(&mut map)
            .expect("the loop does not fail");
        assert_eq!(stop, Stop::Count);
        assert_eq!(
            events(&llog),
            ["read"],
            "{}: the other channel is served",
            backend.name()
        );
        if backend != Backend::Select {
            assert_eq!(
                events(&hlog),
                ["read"],
                "poll and epoll have no FD_SETSIZE limit"
            );
            assert!(map.contains(ht));
        } else {
            let err = typed
                .get()
                .expect("a typed FdSetSizeError through handle_error");
            assert_eq!(
                err,
                FdSetSizeError {
                    fd: high_fd,
                    limit: FD_SETSIZE
                }
            );
            assert_eq!(events(&hlog).len(), 1, "{:?}", events(&hlog));
            assert!(!map.contains(ht), "the default-like handler closed it");
        }
        // The loop goes on serving the other channel.
        (&low_peer).write_all(b"l").unwrap();
        lp(backend).count(1).run(&mut map).unwrap();
        assert_eq!(events(&llog), ["read", "read"], "{}", backend.name());
    }
}

/// A `handle_error` that keeps the channel open must not make select report
/// the out-of-range fd again on every pass with a zero timeout (a spin):
/// the channel is closed after its error, once.
#[test]
fn fd_above_fd_setsize_is_reported_once_even_if_handle_error_keeps_the_channel() {
    struct KeepsChannel {
        errors: Rc<Cell<usize>>,
    }
    impl Handler for KeepsChannel {
        fn handle_error(&mut self, _ch: &mut Dispatcher, _err: io::Error, _cx: &mut Context<'_>) {
            self.errors.set(self.errors.get() + 1); // and no close
        }
    }
    let want = FD_SETSIZE as u64 + 512;
    if !ensure_nofile(want) {
        eprintln!("skipped: cannot raise RLIMIT_NOFILE to {want} to get an fd above FD_SETSIZE");
        return;
    }
    let (high, _high_peer) = pair_at(FD_SETSIZE as RawFd + 100);
    let (low, _low_peer) = pair_at(0);
    let errors = Rc::new(Cell::new(0));
    let mut map = Map::new();
    let ht = map.add(
        Dispatcher::from_socket(high).unwrap(),
        KeepsChannel {
            errors: errors.clone(),
        },
    );
    // An idle channel keeps the map non-empty, so the loop waits its timeout.
    map.add(
        Dispatcher::from_socket(low).unwrap(),
        Recorder::new(&new_log())
            .readable(true)
            .writable(false)
            .discard_reads(),
    );
    let start = Instant::now();
    let stop = Loop::new()
        .timeout(Duration::from_millis(20))
        .count(5)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Count);
    assert_eq!(errors.get(), 1, "reported once");
    assert!(!map.contains(ht), "closed after its error");
    // Timeouts are minimums: four idle waits of 20 ms after the error pass.
    assert!(start.elapsed() >= Duration::from_millis(80), "spun");
}

/// Counts its read events; reads (and drops) what comes.
struct CountReads(Rc<Cell<usize>>);

impl Handler for CountReads {
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        self.0.set(self.0.get() + 1);
        ch.recv(&mut [0u8; 64]).map(drop)
    }
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
}

/// A `CountReads` channel on a socket pair, registered by one pass of a
/// loop on `backend`: the map, its handle, its read count, the socket's
/// peer, and the loop (one pass per `run`), which the caller goes on with.
fn registered_reader(
    backend: Backend,
) -> (
    Map,
    selectloop::Handle<Dispatcher, CountReads>,
    Rc<Cell<usize>>,
    UnixStream,
    Loop,
) {
    let (a, peer) = UnixStream::pair().unwrap();
    let reads = Rc::new(Cell::new(0));
    let mut map = Map::new();
    let h = map.add(
        Dispatcher::from_socket(a).unwrap(),
        CountReads(reads.clone()),
    );
    let mut one = lp(backend).count(1);
    one.run(&mut map).unwrap();
    (map, h, reads, peer, one)
}

/// A live channel gets a new dispatcher (a new fd) while a `dup` of its
/// old fd keeps the old socket open; then the old socket's peer writes.
/// epoll's entry belongs to the old open file and cannot be removed by
/// number any more: the loop rebuilds its set, so the old file's events do
/// not reach the channel under its new fd (it spun, one empty read event
/// per pass). select and poll watch by number and never saw them.
#[test]
fn a_channel_that_trades_its_fd_gets_no_events_of_the_old_file() {
    use std::os::fd::AsFd;
    for backend in LOOP_BACKENDS {
        let (mut map, h, reads, mut peer, mut one) = registered_reader(backend);
        let _old_file = nix::unistd::dup(map.channel_mut(h).unwrap().as_fd()).unwrap();
        let (c, mut c_peer) = UnixStream::pair().unwrap();
        let c_reads = Rc::new(Cell::new(0));
        map.add(
            Dispatcher::from_socket(c).unwrap(),
            CountReads(c_reads.clone()),
        );
        one.run(&mut map).unwrap();
        let (b, _b_peer) = UnixStream::pair().unwrap();
        *map.channel_mut(h).unwrap() = Dispatcher::from_socket(b).unwrap();
        peer.write_all(b"for the old socket").unwrap();
        // The iteration that rebuilds the set still waits and delivers.
        c_peer.write_all(b"c").unwrap();
        one.run(&mut map).unwrap();
        assert_eq!(
            c_reads.get(),
            1,
            "{}: an iteration went by without its events",
            backend.name()
        );
        let mut passes = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            one.run(&mut map).unwrap();
            passes += 1;
        }
        assert_eq!(
            reads.get(),
            0,
            "{}: the old file's events reached the channel",
            backend.name()
        );
        assert!(
            passes < 100,
            "{}: {passes} passes in 300 ms: a spin",
            backend.name()
        );
    }
}

/// The same with the new socket at the old number (close, then a new
/// socket, which gets the lowest free number): the channel is watched on
/// its new socket (on epoll it was not: the old entry died with the close,
/// and the number looked unchanged).
#[test]
fn a_channel_given_a_new_socket_at_its_old_number_is_watched() {
    for backend in LOOP_BACKENDS {
        let (mut map, h, reads, _a_peer, mut one) = registered_reader(backend);
        let old_fd = map.fileno(h).unwrap();
        let d = map.channel_mut(h).unwrap();
        d.close();
        let (b, mut b_peer) = UnixStream::pair().unwrap();
        let b = Dispatcher::from_socket(b).unwrap();
        let same_number = b.fileno() == Some(old_fd);
        *d = b;
        b_peer.write_all(b"new").unwrap();
        for _ in 0..5 {
            one.run(&mut map).unwrap();
        }
        assert_eq!(
            reads.get(),
            1,
            "{}: the new socket was not watched (same number: {same_number})",
            backend.name()
        );
    }
}

/// Replaces its own socket, once, in its first read event: closes it and
/// puts a new connected socket (which gets the same fd number) in its
/// place, keeping that socket's peer. Its predicates are asked only after
/// its own events.
struct ReplacesItself {
    reads: Rc<Cell<usize>>,
    new_peer: Rc<RefCell<Option<UnixStream>>>,
}

impl Handler for ReplacesItself {
    const PREDICATES: selectloop::Predicates = selectloop::Predicates::AfterOwnEvents;
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        ch.recv(&mut [0u8; 64])?;
        if self.new_peer.borrow().is_none() {
            ch.close();
            let (mine, peer) = UnixStream::pair()?;
            *ch = Dispatcher::from_socket(mine)?;
            *self.new_peer.borrow_mut() = Some(peer);
        }
        Ok(())
    }
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
}

/// The same from inside the channel's own handler, on the fast path: the
/// loop learns of the new dispatcher from the check after the event, and
/// watches it (on epoll it did not: same number, same state, and no event
/// could come to make the loop ask again).
#[test]
fn a_channel_that_replaces_its_own_socket_is_watched() {
    for backend in LOOP_BACKENDS {
        let (a, mut a_peer) = UnixStream::pair().unwrap();
        let reads = Rc::new(Cell::new(0));
        let new_peer = Rc::new(RefCell::new(None));
        let mut map = Map::new();
        map.add(
            Dispatcher::from_socket(a).unwrap(),
            ReplacesItself {
                reads: reads.clone(),
                new_peer: new_peer.clone(),
            },
        );
        a_peer.write_all(b"first").unwrap();
        let mut one = lp(backend).count(1);
        for _ in 0..3 {
            one.run(&mut map).unwrap();
        }
        assert_eq!(reads.get(), 1, "{}", backend.name());
        let mut peer = new_peer.borrow_mut().take().expect("replaced");
        peer.write_all(b"second").unwrap();
        for _ in 0..5 {
            one.run(&mut map).unwrap();
        }
        assert_eq!(
            reads.get(),
            2,
            "{}: the new socket was not watched",
            backend.name()
        );
    }
}

// ---------------------------------------------------------------------------
// Stale events after fd reuse within one iteration
// ---------------------------------------------------------------------------

/// asyncore looks channels up by fd for each ready fd: when channel A
/// closes in its read handler and a newcomer gets A's fd number in the same
/// iteration, A's write event (same select result) goes to the newcomer.
/// Here events are keyed by token (slot + generation) and dropped.
#[test]
fn stale_event_after_fd_reuse_is_not_delivered_to_the_newcomer() {
    for backend in LOOP_BACKENDS {
        let base = 700;
        let (a, a_peer) = pair_at(base);
        let a_fd = a.as_raw_fd();
        (&a_peer).write_all(b"x").unwrap();
        let mut map = Map::new();
        let alog = new_log();
        let nlog = new_log();
        let newcomer = Rc::new(Cell::new(None::<Token>));
        let peers = Rc::new(RefCell::new(Vec::new()));
        let mut ha = Recorder::new(&alog)
            .readable(true)
            .writable(true)
            .discard_reads();
        let (nl, nc, ps) = (nlog.clone(), newcomer.clone(), peers.clone());
        ha.on_read = hook(move |ch, cx| {
            ch.close();
            // A newcomer, ready to read and write, at A's old number.
            let (n, n_peer) = UnixStream::pair().unwrap();
            (&n_peer).write_all(b"n").unwrap();
            let n = dup_at_least(&n, a_fd);
            assert_eq!(n.as_raw_fd(), a_fd, "the newcomer got A's fd number");
            ps.borrow_mut().push(n_peer);
            let newcomer = cx.add(
                Dispatcher::from_socket(socket2::Socket::from(n))?,
                Recorder::new(&nl)
                    .readable(true)
                    .writable(true)
                    .discard_reads(),
            );
            nc.set(Some(newcomer.token()));
            Ok(())
        });
        map.add(Dispatcher::from_socket(a).unwrap(), ha);
        lp(backend).count(1).run(&mut map).unwrap();
        assert_eq!(
            events(&alog),
            ["read"],
            "{}: no write after close",
            backend.name()
        );
        assert!(
            events(&nlog).is_empty(),
            "{}: the newcomer got a stale event: {:?}",
            backend.name(),
            events(&nlog)
        );
        // From the next iteration on the newcomer is served.
        lp(backend).count(1).run(&mut map).unwrap();
        assert_eq!(events(&nlog), ["read", "write"], "{}", backend.name());
        map.close_all();

        // The same when another channel closes A and the newcomer takes
        // A's slot and fd: A's pending event is dropped, not redirected.
        // Closed through `cx.close`, or through `cx.get_mut` (then A leaves
        // the map only when its stale event comes up, after the newcomer
        // joined: the newcomer must stay watched on select too).
        for via_get_mut in [false, true] {
            let (a, a_peer) = pair_at(base);
            let a_fd = a.as_raw_fd();
            (&a_peer).write_all(b"x").unwrap();
            let (b, _b_peer) = pair_at(0);
            let mut map = Map::new(); // fresh: B must get slot 0, A slot 1
            let alog = new_log();
            let nlog = new_log();
            let a_handle = Rc::new(Cell::new(None::<selectloop::Handle<Dispatcher, Recorder>>));
            let mut hb = Recorder::new(&new_log())
                .readable(false)
                .writable(true)
                .discard_reads();
            let (ah, nl, ps) = (a_handle.clone(), nlog.clone(), peers.clone());
            let mut done = false;
            hb.on_write = hook(move |_ch, cx| {
                if std::mem::replace(&mut done, true) {
                    return Ok(());
                }
                let a = ah.get().unwrap();
                if via_get_mut {
                    cx.get_mut(a).unwrap().0.close();
                } else {
                    assert!(cx.close(a));
                }
                let (n, n_peer) = UnixStream::pair().unwrap();
                (&n_peer).write_all(b"n").unwrap();
                let n = dup_at_least(&n, a_fd);
                assert_eq!(n.as_raw_fd(), a_fd, "the newcomer got A's fd number");
                ps.borrow_mut().push(n_peer);
                cx.add(
                    Dispatcher::from_socket(socket2::Socket::from(n))?,
                    Recorder::new(&nl)
                        .readable(true)
                        .writable(false)
                        .discard_reads(),
                );
                Ok(())
            });
            map.add(Dispatcher::from_socket(b).unwrap(), hb); // slot order: B first
            let handle = map.add(
                Dispatcher::from_socket(a).unwrap(),
                Recorder::new(&alog)
                    .readable(true)
                    .writable(false)
                    .discard_reads(),
            );
            a_handle.set(Some(handle));
            // One loop for both passes: a new loop would register every
            // channel afresh and hide what the first pass left.
            let mut one = lp(backend).count(1);
            one.run(&mut map).unwrap();
            assert!(
                events(&alog).is_empty(),
                "{}: {:?}",
                backend.name(),
                events(&alog)
            );
            assert!(
                events(&nlog).is_empty(),
                "{}: the newcomer got A's stale event: {:?}",
                backend.name(),
                events(&nlog)
            );
            one.run(&mut map).unwrap();
            assert_eq!(
                events(&nlog),
                ["read"],
                "{} (closed via get_mut: {via_get_mut})",
                backend.name()
            );
            map.close_all();
        }
    }
}

// ---------------------------------------------------------------------------
// EINTR
// ---------------------------------------------------------------------------

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

fn install_sigusr1() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        // No SA_RESTART: interrupted syscalls fail with EINTR.
        let act = SigAction::new(
            SigHandler::Handler(count_signal),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only increments an atomic, which is
        // async-signal-safe.
        unsafe { sigaction(Signal::SIGUSR1, &act) }.unwrap();
    });
}

/// Runs `wait` on this thread while another thread sends it SIGUSR1 every
/// 2 ms, for at most `window`. Returns what `wait` returned, how long it
/// took, and how many signals the handler saw meanwhile.
fn under_signals<T>(window: Duration, wait: impl FnOnce() -> T) -> (T, Duration, usize) {
    install_sigusr1();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let before = SIGNALS.load(Ordering::Relaxed);
    let killer = thread::spawn(move || {
        let end = Instant::now() + window;
        while !s.load(Ordering::Relaxed) && Instant::now() < end {
            // SAFETY: `me` is the waiting thread, which outlives this thread
            // (it joins it), and SIGUSR1 has a handler installed.
            let rc = unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            assert_eq!(rc, 0);
            thread::sleep(Duration::from_millis(2));
        }
    });
    let start = Instant::now();
    let out = wait();
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    killer.join().unwrap();
    (out, took, SIGNALS.load(Ordering::Relaxed) - before)
}

/// A signal during the wait never surfaces as an error (nix's poll/select
/// return EINTR), and the wait is retried with the time left, not the full
/// timeout: under a stream of signals a 200 ms wait still ends long before
/// the 5 s stream does (restarting in full would never end while it lasts).
#[test]
fn eintr_never_surfaces_and_the_wait_is_not_restarted_in_full() {
    let window = Duration::from_secs(5);
    let timeout = Duration::from_millis(200);
    for backend in LOOP_BACKENDS {
        let (a, _peer) = pair_at(0); // never ready
        let mut map = Map::new();
        let log = new_log();
        map.add(
            Dispatcher::from_socket(a).unwrap(),
            Recorder::new(&log)
                .readable(true)
                .writable(false)
                .discard_reads(),
        );
        let (res, took, signals) = under_signals(window, || {
            Loop::new()
                .timeout(timeout)
                .backend(backend)
                .count(1)
                .run(&mut map)
        });
        assert_eq!(
            res.expect("EINTR never surfaces"),
            Stop::Count,
            "{}",
            backend.name()
        );
        assert!(
            signals > 0,
            "{}: no signal arrived during the wait",
            backend.name()
        );
        assert!(
            took >= timeout,
            "{}: woke up early: {took:?}",
            backend.name()
        );
        assert!(
            took < window,
            "{}: the wait restarted in full: {took:?}",
            backend.name()
        );
        assert!(events(&log).is_empty());
    }
    // The same at the syscall layer.
    let (a, _peer) = pair_at(0);
    let (n, took, signals) = under_signals(window, || {
        let mut fds = [PollFd::new(a.as_raw_fd(), PollFlags::POLLIN)];
        sys::poll(&mut fds, Some(timeout))
    });
    assert_eq!(n.expect("poll: EINTR never surfaces"), 0);
    assert!(
        signals > 0 && took >= timeout && took < window,
        "poll: {took:?}, {signals}"
    );
    let (n, took, signals) = under_signals(window, || {
        let (mut r, mut w, mut x) = (FdSet::new(), FdSet::new(), FdSet::new());
        r.insert(a.as_raw_fd()).unwrap();
        sys::select(&mut r, &mut w, &mut x, Some(timeout))
    });
    assert_eq!(n.expect("select: EINTR never surfaces"), 0);
    assert!(
        signals > 0 && took >= timeout && took < window,
        "select: {took:?}, {signals}"
    );
}

// ---------------------------------------------------------------------------
// SIGPIPE
// ---------------------------------------------------------------------------

const SIGPIPE_CHILD: &str = "SELECTLOOP_SIGPIPE_CHILD";

/// Writing to a peer that is gone must never kill the process: not on a
/// socket, not on a pipe file_dispatcher. Rust programs start with SIGPIPE
/// ignored, so this runs in a child process (this test binary again, this
/// test only) that first restores the default action, "terminate".
#[test]
fn sigpipe_never_kills_the_process() {
    if std::env::var_os(SIGPIPE_CHILD).is_some() {
        sigpipe_child();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigpipe_never_kills_the_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SIGPIPE_CHILD, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sigpipe child: ok"),
        "the child died or failed: {:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sigpipe_default() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code in signal context.
    unsafe { sigaction(Signal::SIGPIPE, &dfl) }.unwrap();
}

fn sigpipe_child() {
    sigpipe_default();
    // asyncore's file_wrapper is usable on its own, with no map or loop.
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let mut fw = selectloop::FileWrapper::new(&w).unwrap();
    let err = fw.send(b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPIPE), "file_wrapper alone");
    drop((fw, w));
    let mut map = Map::new(); // makes sure SIGPIPE cannot kill us
    for backend in LOOP_BACKENDS {
        // A pipe whose reader is gone.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let log = new_log();
        let mut h = Recorder::new(&log)
            .readable(false)
            .writable(true)
            .discard_reads();
        h.on_write = hook(|ch, _cx| ch.send(b"x").map(drop));
        let t = map.add(Dispatcher::file_dispatcher(&w).unwrap(), h);
        lp(backend).count(5).run(&mut map).unwrap();
        assert!(!map.contains(t));
        assert_eq!(events(&log), ["write", "close"], "pipe, {}", backend.name());
    }
    // Sockets are written with MSG_NOSIGNAL: safe even with SIGPIPE at its
    // default action.
    sigpipe_default();
    for backend in LOOP_BACKENDS {
        let (a, b) = pair_at(0);
        drop(b);
        let log = new_log();
        let mut h = Recorder::new(&log)
            .readable(false)
            .writable(true)
            .discard_reads();
        h.on_write = hook(|ch, _cx| ch.send(b"x").map(drop));
        let t = map.add(Dispatcher::from_socket(a).unwrap(), h);
        lp(backend).count(5).run(&mut map).unwrap();
        assert!(!map.contains(t));
        assert_eq!(
            events(&log),
            ["write", "close"],
            "socket, {}",
            backend.name()
        );
    }
    // sendto on a TCP stream whose peer is gone (EPIPE once the reset is in).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut d = Dispatcher::from_socket(std::net::TcpStream::connect(addr).unwrap()).unwrap();
    drop(l.accept().unwrap());
    let to = socket2::SockAddr::from(addr);
    let deadline = Instant::now() + PATIENCE;
    while d.sendto(b"x", &to).is_ok() {
        assert!(Instant::now() < deadline, "sendto never failed");
        thread::sleep(Duration::from_millis(1));
    }
    println!("sigpipe child: ok");
}

// ---------------------------------------------------------------------------
// Close once
// ---------------------------------------------------------------------------

/// A channel both readable and writable in one pass that closes in
/// handle_read gets no handle_write (asyncore calls write on the closed
/// object) and its fd is closed exactly once: a file that takes the number
/// right after the close survives the rest of the iteration and the next.
#[test]
fn closing_in_handle_read_gets_no_handle_write_and_closes_the_fd_once() {
    for backend in LOOP_BACKENDS {
        for via_token in [false, true] {
            let (a, peer) = pair_at(750);
            let fd = a.as_raw_fd();
            (&peer).write_all(b"x").unwrap();
            let mut map = Map::new();
            let log = new_log();
            let sentinel = Rc::new(RefCell::new(None::<OwnedFd>));
            let mut h = Recorder::new(&log)
                .readable(true)
                .writable(true)
                .discard_reads();
            let s = sentinel.clone();
            h.on_read = hook(move |ch, cx| {
                if via_token {
                    cx.close(cx.token());
                } else {
                    ch.close();
                    // The number is free now: take it.
                    let taken = dup_at_least(&peer, fd);
                    assert_eq!(taken.as_raw_fd(), fd);
                    *s.borrow_mut() = Some(taken);
                }
                Ok(())
            });
            let t = map.add(Dispatcher::from_socket(a).unwrap(), h);
            lp(backend).count(1).run(&mut map).unwrap();
            let what = format!("{} via_token={via_token}", backend.name());
            assert_eq!(
                events(&log),
                ["read"],
                "{what}: no write, no close after close"
            );
            assert!(!map.contains(t), "{what}: left the map at once");
            if via_token {
                assert!(!fd_is_open(fd), "{what}: the fd was closed");
                let (x, _y) = UnixStream::pair().unwrap();
                let taken = dup_at_least(&x, fd);
                assert_eq!(taken.as_raw_fd(), fd);
                *sentinel.borrow_mut() = Some(taken);
            }
            lp(backend).count(2).run(&mut map).unwrap();
            if !fd_is_open(fd) {
                // Do not let the sentinel close a number it no longer owns
                // (std aborts on that): report the bug instead.
                std::mem::forget(sentinel.borrow_mut().take());
                panic!("{what}: the fd number was closed a second time");
            }
            drop(sentinel.borrow_mut().take());
        }
    }
}

// ---------------------------------------------------------------------------
// Closed fd still registered
// ---------------------------------------------------------------------------

/// A listener whose fd was replaced behind its back (the number now
/// another file's): `accept` says so (`ENOTSOCK`), and the dispatcher
/// forgets the number instead of closing the other file.
#[test]
fn accept_on_a_replaced_fd_forgets_it_without_closing_the_new_file() {
    let mut d = Dispatcher::create_socket(socket2::Domain::IPV4, socket2::Type::STREAM).unwrap();
    d.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    d.listen(1).unwrap();
    let fd = d.fileno().unwrap();
    let other = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: dup2 closes the listener's socket and puts /dev/null at its
    // number; the returned OwnedFd owns it from now on. The dispatcher
    // still holds the number: the test checks that it forgets it rather
    // than closing it.
    let replaced = unsafe { nix::unistd::dup2_raw(&other, fd) }.unwrap();
    let err = d.accept().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTSOCK), "{err}");
    assert!(d.is_closed());
    assert!(fd_is_open(fd), "the other file's fd was closed");
    drop(d);
    assert!(fd_is_open(fd), "closed when the dispatcher was dropped");
    drop(replaced);
}

/// The same when the number was taken by a socket that does not listen:
/// `accept` fails with `EINVAL`, which a listener that was shut down gets
/// too; the dispatcher tells the two apart (the socket it listened on is
/// not the one at its number any more) and forgets the number.
#[test]
fn accept_einval_on_a_reused_number_leaves_the_other_socket_open() {
    let mut d = Dispatcher::create_socket(socket2::Domain::IPV4, socket2::Type::STREAM).unwrap();
    d.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .unwrap();
    d.listen(1).unwrap();
    let fd = d.fileno().unwrap();
    let (other, _peer) = UnixStream::pair().unwrap();
    // SAFETY: as above: dup2 closes the listener's socket and puts the
    // connected socket at its number, owned by `replaced` from now on.
    let replaced = unsafe { nix::unistd::dup2_raw(&other, fd) }.unwrap();
    let err = d.accept().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    assert!(d.is_closed());
    drop(d);
    assert!(fd_is_open(fd), "the other socket's fd was closed");
    drop(replaced);
}

/// An fd closed behind its channel's back: select fails the whole call with
/// EBADF, poll reports POLLNVAL on every call (a 100% CPU spin). Neither may
/// take the loop down or spin: the channel gets handle_error once and leaves
/// the map, without closing the number again, and the others go on.
#[test]
fn fd_closed_behind_the_channels_back_is_reported_once_and_removed() {
    for backend in LOOP_BACKENDS {
        let (x, _x_peer) = pair_at(800);
        let fd = x.as_raw_fd();
        let (g, g_peer) = pair_at(0);
        (&g_peer).write_all(b"g").unwrap();
        let mut map = Map::new();
        let xlog = new_log();
        let glog = new_log();
        let sentinel = Rc::new(RefCell::new(None::<OwnedFd>));
        let mut hx = Recorder::new(&xlog)
            .readable(true)
            .writable(false)
            .discard_reads();
        let (s, gp) = (sentinel.clone(), g_peer.try_clone().unwrap());
        hx.on_error = Some(Box::new(move |_ch, _err| {
            // Whatever takes the number now must not be closed by the crate.
            let taken = dup_at_least(&gp, fd);
            assert_eq!(taken.as_raw_fd(), fd);
            *s.borrow_mut() = Some(taken);
        }));
        let xt = map.add(Dispatcher::from_socket(x).unwrap(), hx);
        map.add(
            Dispatcher::from_socket(g).unwrap(),
            Recorder::new(&glog)
                .readable(true)
                .writable(false)
                .discard_reads(),
        );
        nix::unistd::close(fd).unwrap(); // behind the channel's back
        let stop = lp(backend)
            .count(3)
            .run(&mut map)
            .expect("the loop does not fail");
        assert_eq!(stop, Stop::Count);
        if map.contains(xt) {
            // Its dispatcher still owns the closed number and would close it
            // on drop (std aborts on that): report the bug instead.
            std::mem::forget(map);
            panic!(
                "{}: the channel was not removed: {:?}",
                backend.name(),
                events(&xlog)
            );
        }
        let xe = events(&xlog);
        assert_eq!(
            xe.len(),
            1,
            "{}: exactly one report: {xe:?}",
            backend.name()
        );
        assert!(
            xe[0].starts_with("error:") && xe[0].contains(&format!("fd {fd}")),
            "{xe:?}"
        );
        assert_eq!(
            events(&glog),
            ["read"],
            "{}: the others go on",
            backend.name()
        );
        if !fd_is_open(fd) {
            std::mem::forget(sentinel.borrow_mut().take());
            panic!("{}: the number was closed again", backend.name());
        }
        drop(sentinel.borrow_mut().take());
    }
}

// ---------------------------------------------------------------------------
// Half-close and HUP
// ---------------------------------------------------------------------------

/// A peer that shuts down its write side is a read of 0 bytes and then
/// handle_close, on both backends, for TCP and Unix sockets.
#[test]
fn half_close_is_a_read_of_zero_then_handle_close() {
    for backend in LOOP_BACKENDS {
        let tcp = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (b, _) = l.accept().unwrap();
            (socket2::Socket::from(a), socket2::Socket::from(b))
        };
        let unix = {
            let (a, b) = UnixStream::pair().unwrap();
            (socket2::Socket::from(a), socket2::Socket::from(b))
        };
        for (kind, (a, b)) in [("tcp", tcp), ("unix", unix)] {
            let mut map = Map::new();
            let log = new_log();
            let got = Rc::new(Cell::new(usize::MAX));
            let mut h = Recorder::new(&log)
                .readable(true)
                .writable(false)
                .discard_reads();
            let g = got.clone();
            h.on_read = hook(move |ch, _cx| {
                g.set(ch.recv(&mut [0u8; 16])?);
                Ok(())
            });
            let t = map.add(Dispatcher::from_socket(a).unwrap(), h);
            b.shutdown(std::net::Shutdown::Write).unwrap();
            let deadline = Instant::now() + PATIENCE;
            while map.contains(t) {
                assert!(Instant::now() < deadline, "{kind} {}", backend.name());
                lp(backend).count(1).run(&mut map).unwrap();
            }
            assert_eq!(got.get(), 0, "{kind} {}", backend.name());
            assert_eq!(events(&log), ["read", "close"], "{kind} {}", backend.name());
        }
    }
}

/// asyncore calls handle_close on POLLHUP right after one handle_read: a
/// pipe or Unix socket whose writer left more than one `recv` in the
/// buffer loses the rest. Here every byte is read before handle_close, on
/// both backends, for a pipe and a Unix stream socket.
#[test]
fn hangup_with_unread_data_delivers_every_byte_before_handle_close() {
    const SENT: usize = 48 * 1024; // fits a pipe's and a socket's buffer
    for backend in LOOP_BACKENDS {
        let (pipe_r, pipe_w) = nix::unistd::pipe().unwrap();
        let (sock_r, sock_w) = UnixStream::pair().unwrap();
        let pipe = (
            Dispatcher::file_dispatcher(&pipe_r).unwrap(),
            std::fs::File::from(pipe_w),
        );
        let sock = (
            Dispatcher::from_socket(sock_r).unwrap(),
            std::fs::File::from(OwnedFd::from(sock_w)),
        );
        drop(pipe_r); // the dispatcher holds its own duplicate
        for (kind, (reader, mut writer)) in [("pipe", pipe), ("unix", sock)] {
            writer.write_all(&vec![7u8; SENT]).unwrap();
            drop(writer); // hang up with everything still unread
            let mut map = Map::new();
            let log = new_log();
            let got = Rc::new(Cell::new(0usize));
            let mut h = Recorder::new(&log)
                .readable(true)
                .writable(false)
                .discard_reads();
            let g = got.clone();
            h.on_read = hook(move |ch, _cx| {
                // Far less than was sent: several reads are needed.
                g.set(g.get() + ch.recv(&mut [0u8; 4096])?);
                Ok(())
            });
            let t = map.add(reader, h);
            let deadline = Instant::now() + PATIENCE;
            while map.contains(t) {
                assert!(Instant::now() < deadline, "{kind} {}", backend.name());
                lp(backend).count(1).run(&mut map).unwrap();
            }
            assert_eq!(got.get(), SENT, "{kind} {}: bytes lost", backend.name());
            assert_eq!(
                events(&log).last().map(String::as_str),
                Some("close"),
                "{kind} {}",
                backend.name()
            );
        }
    }
}

/// POLLHUP is reported even for `events = 0`: a channel that asks for
/// nothing must not be polled at all, or every poll returns at once (a
/// spin) and its handlers run on every pass.
#[test]
fn pollhup_on_a_channel_that_asks_for_nothing_does_not_spin() {
    for backend in LOOP_BACKENDS {
        let (a, b) = pair_at(0);
        drop(b); // the peer is gone: POLLHUP
        let mut map = Map::new();
        let log = new_log();
        map.add(
            Dispatcher::from_socket(a).unwrap(),
            Recorder::new(&log)
                .readable(false)
                .writable(false)
                .discard_reads(),
        );
        let start = Instant::now();
        let stop = Loop::new()
            .timeout(Duration::from_millis(20))
            .backend(backend)
            .count(5)
            .run(&mut map)
            .unwrap();
        assert_eq!(stop, Stop::Count);
        assert!(
            events(&log).is_empty(),
            "{}: {:?}",
            backend.name(),
            events(&log)
        );
        // Timeouts are minimums: five waits of 20 ms, not five instant returns.
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{}: spun",
            backend.name()
        );
    }
}

// ---------------------------------------------------------------------------
// Backpressure
// ---------------------------------------------------------------------------

struct Echo {
    reads: Rc<Cell<usize>>,
}

impl Handler<DispatcherWithSend> for Echo {
    fn handle_read(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        self.reads.set(self.reads.get() + 1);
        let mut buf = [0u8; 8192];
        let n = ch.recv(&mut buf)?;
        ch.send(&buf[..n])?;
        Ok(())
    }
}

/// An echo server whose peer sends without reading: asyncore's
/// dispatcher_with_send buffers the echo without bound. Here the queue stops
/// at its limit, the channel stops reading while it is full (TCP flow
/// control then stops the peer), and reading resumes once it drains.
#[test]
fn dispatcher_with_send_stops_reading_while_its_buffer_is_full() {
    const LIMIT: usize = 32 * 1024;
    for backend in LOOP_BACKENDS {
        let (a, peer) = pair_at(0);
        peer.set_nonblocking(true).unwrap();
        let mut map = Map::new();
        let reads = Rc::new(Cell::new(0));
        let d =
            DispatcherWithSend::new(Dispatcher::from_socket(a).unwrap()).with_output_limit(LIMIT);
        let t = map.add(
            d,
            Echo {
                reads: reads.clone(),
            },
        );
        let chunk = [7u8; 4096];
        let mut max_pending = 0;
        // Rounds until the queue is full (bounded), then 50 more rounds.
        let mut reads_when_full = None;
        let mut rounds_after_full = 0;
        for _ in 0..5000 {
            // The peer writes what it can and reads nothing.
            let mut budget = 64;
            while budget > 0 && (&peer).write(&chunk).is_ok() {
                budget -= 1;
            }
            lp(backend)
                .timeout(Duration::ZERO)
                .count(1)
                .run(&mut map)
                .unwrap();
            let d = map.channel_mut(t).expect("still open");
            max_pending = max_pending.max(d.pending());
            if reads_when_full.is_none() && d.is_full() {
                reads_when_full = Some(reads.get());
            }
            if reads_when_full.is_some() {
                rounds_after_full += 1;
                if rounds_after_full == 50 {
                    break;
                }
            }
        }
        assert!(
            reads_when_full.is_some(),
            "{}: the queue never filled up",
            backend.name()
        );
        assert!(
            max_pending < LIMIT + 8192,
            "{}: the queue grew to {max_pending} (limit {LIMIT})",
            backend.name()
        );
        assert_eq!(
            Some(reads.get()),
            reads_when_full,
            "{}: read while full",
            backend.name()
        );
        // The peer reads: the queue drains and reading resumes.
        let before = reads.get();
        let deadline = Instant::now() + PATIENCE;
        while reads.get() == before {
            assert!(
                Instant::now() < deadline,
                "{}: reading never resumed",
                backend.name()
            );
            let mut sink = [0u8; 65536];
            while (&peer).read(&mut sink).is_ok_and(|n| n > 0) {}
            lp(backend).count(1).run(&mut map).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Timeouts at the syscall layer
// ---------------------------------------------------------------------------

/// 500 µs must not become a 0 ms poll (a busy loop): the wait rounds up.
#[test]
fn sub_millisecond_timeout_rounds_up_not_down_to_a_busy_loop() {
    let (a, _b) = pair_at(0);
    let t = Duration::from_micros(500);
    for _ in 0..5 {
        let mut fds = [PollFd::new(a.as_raw_fd(), PollFlags::POLLIN)];
        let start = Instant::now();
        assert_eq!(sys::poll(&mut fds, Some(t)).unwrap(), 0);
        assert!(
            start.elapsed() >= t,
            "poll returned after {:?}",
            start.elapsed()
        );
        let (mut r, mut w, mut x) = (FdSet::new(), FdSet::new(), FdSet::new());
        r.insert(a.as_raw_fd()).unwrap();
        let start = Instant::now();
        assert_eq!(sys::select(&mut r, &mut w, &mut x, Some(t)).unwrap(), 0);
        assert!(
            start.elapsed() >= t,
            "select returned after {:?}",
            start.elapsed()
        );
    }
    // And through the loop, on both backends.
    for backend in LOOP_BACKENDS {
        let (a, _b) = pair_at(0);
        let mut map = Map::new();
        map.add(
            Dispatcher::from_socket(a).unwrap(),
            Recorder::new(&new_log())
                .readable(true)
                .writable(false)
                .discard_reads(),
        );
        let start = Instant::now();
        Loop::new()
            .timeout(t)
            .backend(backend)
            .count(4)
            .run(&mut map)
            .unwrap();
        assert!(
            start.elapsed() >= 4 * t,
            "{}: {:?}",
            backend.name(),
            start.elapsed()
        );
    }
}

/// Huge timeouts clamp: a cast that wraps (2^32 ms + 1 ms becomes 1 ms,
/// i32::MAX + 1 ms becomes negative, Duration::MAX seconds a negative
/// tv_sec) would time out early or fail. Each wait must end by the event a
/// thread sends after 50 ms.
#[test]
fn huge_timeouts_clamp_instead_of_wrapping() {
    let huge = [
        Duration::from_millis((1u64 << 32) + 1),
        Duration::from_millis(i32::MAX as u64 + 1),
        Duration::from_secs(u64::MAX / 2),
        Duration::MAX,
    ];
    for t in huge {
        for use_select in [false, true] {
            let (a, b) = pair_at(0);
            let writer = thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                (&b).write_all(b"x").unwrap();
                b
            });
            let n = if use_select {
                let (mut r, mut w, mut x) = (FdSet::new(), FdSet::new(), FdSet::new());
                r.insert(a.as_raw_fd()).unwrap();
                let n = sys::select(&mut r, &mut w, &mut x, Some(t));
                assert!(n.as_ref().map_or(true, |_| r.contains(a.as_raw_fd())));
                n
            } else {
                let mut fds = [PollFd::new(a.as_raw_fd(), PollFlags::POLLIN)];
                sys::poll(&mut fds, Some(t))
            };
            let which = if use_select { "select" } else { "poll" };
            assert_eq!(
                n.unwrap_or_else(|e| panic!("{which} {t:?}: {e}")),
                1,
                "{which} {t:?}"
            );
            writer.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Channels closed behind the loop's back, and listeners that must survive
// ---------------------------------------------------------------------------

/// Python's `self.peer.close()` is, in Rust, either `cx.close(peer)` or
/// `cx.channel_mut::<Dispatcher>(peer)?.close()`. After the second, the
/// peer's pending event from the same select/poll result must not reach it
/// (its handler would run on a closed dispatcher), and it leaves the map.
#[test]
fn a_channel_closed_through_channel_mut_gets_no_pending_event() {
    for backend in LOOP_BACKENDS {
        let (b, b_peer) = pair_at(0);
        let (a, a_peer) = pair_at(0);
        (&b_peer).write_all(b"b").unwrap();
        (&a_peer).write_all(b"a").unwrap();
        let mut map = Map::new();
        let a_token = Rc::new(Cell::new(None::<Token>));
        // B is registered first, so it runs first in the pass.
        let blog = new_log();
        let mut hb = Recorder::new(&blog)
            .readable(true)
            .writable(false)
            .discard_reads();
        let at = a_token.clone();
        hb.on_read = hook(move |ch, cx| {
            ch.recv(&mut [0u8; 8])?;
            if let Some(a) = at.get().and_then(|t| cx.dispatcher_mut(t)) {
                a.close();
            }
            Ok(())
        });
        map.add(Dispatcher::from_socket(b).unwrap(), hb);
        let alog = new_log();
        let ta = map.add(
            Dispatcher::from_socket(a).unwrap(),
            Recorder::new(&alog)
                .readable(true)
                .writable(false)
                .discard_reads(),
        );
        a_token.set(Some(ta.token()));
        lp(backend).count(1).run(&mut map).unwrap();
        assert_eq!(events(&blog), ["read"], "{}", backend.name());
        assert!(
            events(&alog).is_empty(),
            "{}: the closed channel got {:?}",
            backend.name(),
            events(&alog)
        );
        assert!(!map.contains(ta), "{}: still in the map", backend.name());
    }
}

/// The last channel closed through `channel_mut` (not `Map::close`): the
/// loop must notice the map is empty and return, not wait its whole timeout
/// (or forever, with `timeout(None)`) on nothing.
#[test]
fn closing_the_last_channel_through_channel_mut_ends_the_loop_without_waiting() {
    for backend in LOOP_BACKENDS {
        let (a, _peer) = pair_at(0);
        let mut map = Map::new();
        let t = map.add(
            Dispatcher::from_socket(a).unwrap(),
            Recorder::new(&new_log())
                .readable(true)
                .writable(false)
                .discard_reads(),
        );
        map.dispatcher_mut(t).unwrap().close();
        let start = Instant::now();
        let stop = Loop::new()
            .timeout(PATIENCE)
            .backend(backend)
            .run(&mut map)
            .unwrap();
        assert_eq!(stop, Stop::Empty, "{}", backend.name());
        assert!(
            start.elapsed() < PATIENCE,
            "{}: waited the whole timeout on an empty map",
            backend.name()
        );
        assert!(map.is_empty());
    }
}

/// asyncore closes a listener whose handler raised, so one connection that
/// cannot be set up (EMFILE from the socket `handle_accepted` opens for it,
/// when the accept took the last fd) takes the whole server down. Here the
/// default `handle_error` of a listening channel logs and keeps listening.
#[test]
fn a_failing_handle_accepted_does_not_close_the_listener() {
    /// Fails the first connection, serves the others.
    struct FailsFirst {
        attempts: Rc<Cell<usize>>,
    }
    impl Handler for FailsFirst {
        fn handle_accepted(
            &mut self,
            _ch: &mut Dispatcher,
            sock: socket2::Socket,
            _addr: socket2::SockAddr,
            cx: &mut Context<'_>,
        ) -> io::Result<()> {
            self.attempts.set(self.attempts.get() + 1);
            if self.attempts.get() == 1 {
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            cx.add(
                Dispatcher::from_socket(sock)?,
                Recorder::new(&new_log())
                    .readable(true)
                    .writable(false)
                    .discard_reads(),
            );
            Ok(())
        }
    }
    for backend in LOOP_BACKENDS {
        let mut server =
            Dispatcher::create_socket(socket2::Domain::IPV4, socket2::Type::STREAM).unwrap();
        server
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap();
        server.listen(5).unwrap();
        let addr = server.addr().unwrap().as_socket().unwrap();
        let attempts = Rc::new(Cell::new(0));
        let mut map = Map::new();
        let lt = map.add(
            server,
            FailsFirst {
                attempts: attempts.clone(),
            },
        );
        let run_until = |map: &mut Map, n: usize| {
            let deadline = Instant::now() + PATIENCE;
            while attempts.get() < n && map.contains(lt) {
                assert!(Instant::now() < deadline, "{}: no accept", backend.name());
                lp(backend).count(1).run(map).unwrap();
            }
        };
        let _first = std::net::TcpStream::connect(addr).unwrap();
        run_until(&mut map, 1);
        assert!(
            map.contains(lt),
            "{}: the listener was closed",
            backend.name()
        );
        let _second = std::net::TcpStream::connect(addr).unwrap();
        run_until(&mut map, 2);
        assert_eq!(
            map.len(),
            2,
            "{}: the second client is served",
            backend.name()
        );
    }
}
