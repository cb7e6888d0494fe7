//! The daemon event sources (src/sources/), each test body on every loop
//! backend: signals under a burst, a waker from another thread, messages
//! from several threads, a child process relayed and reaped, and signal
//! dispositions restored.
//!
//! Each test uses its own signal (SIGUSR1, SIGUSR2, SIGWINCH; SIGCHLD for
//! children), so the tests of this binary can run in parallel.

mod common;

use common::{loop_backends, process_state, signal_masks, Watchdog, PATIENCE};
use selectloop::sources::{
    message_channel, ChildHandler, ChildProcess, ChildStream, MessageHandler, SignalHandler,
    Signals, WakeHandler, Wakeup,
};
use selectloop::{Context, Map};
use std::io;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn raise(signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::this(), signal).expect("kill");
}

// ---------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------

/// Counts deliveries; ends the loop at the first one that began after the
/// burst's last signal was sent.
struct Burst {
    sent: Arc<AtomicUsize>,
    total: usize,
    deliveries: usize,
    after_last: bool,
}

impl SignalHandler for Burst {
    fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
        assert_eq!(signal, libc::SIGUSR1);
        self.deliveries += 1;
        if self.sent.load(Ordering::SeqCst) == self.total {
            self.after_last = true;
            cx.exit();
        }
        Ok(())
    }
}

/// 1,000 SIGUSR1 from another thread while the loop runs: at least one is
/// delivered after the last was sent (none is lost for good), repeats may
/// be coalesced, and the loop never hangs.
#[test]
fn signals_are_delivered_under_a_burst() {
    const TOTAL: usize = 1000;
    for (backend, event_loop) in loop_backends() {
        let sent = Arc::new(AtomicUsize::new(0));
        let mut map = Map::new();
        let token = map.add(
            Signals::new(&[libc::SIGUSR1]).unwrap(),
            Burst {
                sent: Arc::clone(&sent),
                total: TOTAL,
                deliveries: 0,
                after_last: false,
            },
        );
        let raiser = {
            let sent = Arc::clone(&sent);
            thread::spawn(move || {
                for _ in 0..TOTAL - 1 {
                    raise(nix::sys::signal::Signal::SIGUSR1);
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // Short waits, so a lost signal fails the test instead of hanging it.
        let mut event_loop = event_loop.timeout(Duration::from_millis(50));
        let start = Instant::now();
        while !raiser.is_finished() {
            assert!(start.elapsed() < PATIENCE, "{backend}: the burst hung");
            event_loop.iterate(&mut map).unwrap();
        }
        // The last of the burst, counted before it is raised, so its
        // delivery is known to come after it: one must follow.
        sent.fetch_add(1, Ordering::SeqCst);
        raise(nix::sys::signal::Signal::SIGUSR1);
        while !map.handler_mut(token).unwrap().after_last {
            assert!(
                start.elapsed() < PATIENCE,
                "{backend}: no delivery after the last of {TOTAL} signals"
            );
            event_loop.iterate(&mut map).unwrap();
        }
        raiser.join().unwrap();
        let burst = map.handler_mut(token).unwrap();
        assert!(
            (1..=TOTAL + 1).contains(&burst.deliveries),
            "{backend}: {} deliveries",
            burst.deliveries
        );
    }
}

struct Record(Vec<i32>);

impl SignalHandler for Record {
    fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
        self.0.push(signal);
        cx.exit();
        Ok(())
    }
}

/// Bit of `signal` in the /proc signal masks.
fn bit(signal: i32) -> u64 {
    1 << (signal - 1)
}

/// SIGUSR2 starts with its default action (it would end the process). A
/// source catches it, delivers it through the loop, and once dropped the
/// default is back (neither caught nor ignored), every time. Then SIGALRM
/// with a previous handler installed (signal-hook's flag): both run while
/// the source lives, and the previous one alone after it is dropped.
#[test]
fn dropping_a_signal_source_restores_the_previous_disposition() {
    let signal = libc::SIGUSR2;
    let (caught, ignored) = signal_masks();
    assert_eq!(
        (caught & bit(signal), ignored & bit(signal)),
        (0, 0),
        "SIGUSR2 does not start with its default action"
    );
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let mut map = Map::new();
        let token = map.add(Signals::new(&[signal]).unwrap(), Record(Vec::new()));
        assert_ne!(signal_masks().0 & bit(signal), 0, "{backend}: not caught");
        raise(nix::sys::signal::Signal::SIGUSR2);
        event_loop.timeout(None).run(&mut map).unwrap();
        assert_eq!(map.handler_mut(token).unwrap().0, [signal]);
        drop(map);
        let (caught, ignored) = signal_masks();
        assert_eq!(
            (caught & bit(signal), ignored & bit(signal)),
            (0, 0),
            "{backend}: the default action of SIGUSR2 was not restored"
        );
    }

    // A previous handler installed before the crate's first registration
    // of the signal (SIGALRM: its default would end the process): chained
    // while the source lives, still there after.
    let signal = libc::SIGALRM;
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal, Arc::clone(&flag)).unwrap();
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        flag.store(false, Ordering::SeqCst);
        let mut map = Map::new();
        let token = map.add(Signals::new(&[signal]).unwrap(), Record(Vec::new()));
        raise(nix::sys::signal::Signal::SIGALRM);
        event_loop.timeout(None).run(&mut map).unwrap();
        assert_eq!(map.handler_mut(token).unwrap().0, [signal]);
        assert!(
            flag.load(Ordering::SeqCst),
            "{backend}: previous handler not chained"
        );
        drop(map);
        flag.store(false, Ordering::SeqCst);
        raise(nix::sys::signal::Signal::SIGALRM); // the process must survive it
        let start = Instant::now();
        while !flag.load(Ordering::SeqCst) {
            assert!(
                start.elapsed() < PATIENCE,
                "{backend}: previous handler gone"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Two signals of one source raised before the loop looks: both delivered,
/// in one pass.
#[test]
fn each_raised_signal_of_a_set_is_delivered() {
    struct All(Vec<i32>);
    impl SignalHandler for All {
        fn handle_signal(&mut self, signal: i32, cx: &mut Context<'_>) -> io::Result<()> {
            self.0.push(signal);
            if self.0.len() == 2 {
                cx.exit();
            }
            Ok(())
        }
    }
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let mut map = Map::new();
        let token = map.add(
            Signals::new(&[libc::SIGWINCH, libc::SIGURG]).unwrap(),
            All(Vec::new()),
        );
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGURG).unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGWINCH).unwrap();
        event_loop.timeout(None).count(1).run(&mut map).unwrap();
        let mut got = map.handler_mut(token).unwrap().0.clone();
        got.sort_unstable();
        let mut want = vec![libc::SIGWINCH, libc::SIGURG];
        want.sort_unstable();
        assert_eq!(got, want, "{backend}");
    }
}

// ---------------------------------------------------------------------------
// Waker and messages
// ---------------------------------------------------------------------------

struct Woken(usize);

impl WakeHandler for Woken {
    fn handle_wake(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.0 += 1;
        cx.exit();
        Ok(())
    }
}

/// A loop blocked with timeout(None) on nothing but a Wakeup channel is
/// woken by a Waker from another thread.
#[test]
fn waker_from_another_thread_wakes_a_blocked_loop() {
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let wakeup = Wakeup::new().unwrap();
        let waker = wakeup.waker();
        let mut map = Map::new();
        let token = map.add(wakeup, Woken(0));
        let start = Instant::now();
        let from_thread = waker.clone();
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            from_thread.wake().unwrap();
        });
        event_loop.clone().timeout(None).run(&mut map).unwrap();
        thread.join().unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(100),
            "{backend}: woke early"
        );
        assert_eq!(map.handler_mut(token).unwrap().0, 1, "{backend}");
        // Two wake-ups before the loop looks again: one event, and both are
        // consumed by it.
        waker.wake().unwrap();
        waker.wake().unwrap();
        let after = event_loop_once(&mut map, token, event_loop.clone());
        assert_eq!(after, 2, "{backend}: two wake-ups, one event");
        let left = event_loop_once(&mut map, token, event_loop);
        assert_eq!(left, 2, "{backend}: a second event for the same wake-ups");
    }
}

/// One more pass with a zero timeout; returns the handler's count.
fn event_loop_once(
    map: &mut Map,
    token: selectloop::Handle<Wakeup, Woken>,
    event_loop: selectloop::Loop,
) -> usize {
    event_loop.timeout(Duration::ZERO).iterate(map).unwrap();
    map.handler_mut(token).map_or(0, |w| w.0)
}

struct Inbox {
    got: Vec<(usize, u32)>,
    expected: usize,
}

impl MessageHandler<(usize, u32)> for Inbox {
    fn handle_message(&mut self, msg: (usize, u32), cx: &mut Context<'_>) -> io::Result<()> {
        self.got.push(msg);
        if self.got.len() == self.expected {
            cx.exit();
        }
        Ok(())
    }
}

/// 4 threads send 20,000 messages each into a loop blocked with
/// timeout(None): every message arrives, each sender's in its order.
#[test]
fn messages_from_four_threads_arrive_in_per_sender_order() {
    const THREADS: usize = 4;
    const EACH: u32 = 20_000;
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let (sender, channel) = message_channel::<(usize, u32)>().unwrap();
        let mut map = Map::new();
        let token = map.add(
            channel,
            Inbox {
                got: Vec::new(),
                expected: THREADS * EACH as usize,
            },
        );
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let sender = sender.clone();
                thread::spawn(move || {
                    for i in 0..EACH {
                        sender.send((t, i)).unwrap();
                    }
                })
            })
            .collect();
        event_loop.timeout(None).run(&mut map).unwrap();
        for t in threads {
            t.join().unwrap();
        }
        let inbox = map.handler_mut(token).unwrap();
        assert_eq!(inbox.got.len(), THREADS * EACH as usize, "{backend}");
        for t in 0..THREADS {
            let mine: Vec<u32> = inbox.got.iter().filter(|m| m.0 == t).map(|m| m.1).collect();
            assert!(
                mine.iter().copied().eq(0..EACH),
                "{backend}: sender {t}'s messages out of order or missing"
            );
        }
        // The receiver gone, a send fails and gives the message back.
        drop(map);
        assert_eq!(sender.send((9, 9)).unwrap_err().0, (9, 9));
        assert!(sender.is_closed());
    }
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

#[derive(Default)]
struct ChildLog {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    eof: Vec<ChildStream>,
    status: Option<ExitStatus>,
    /// EOFs seen when handle_exit ran.
    eof_before_exit: usize,
}

struct Relay(std::rc::Rc<std::cell::RefCell<ChildLog>>);

impl ChildHandler for Relay {
    fn handle_output(
        &mut self,
        stream: ChildStream,
        data: &[u8],
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut log = self.0.borrow_mut();
        match stream {
            ChildStream::Stdout => log.stdout.extend_from_slice(data),
            ChildStream::Stderr => log.stderr.extend_from_slice(data),
        }
        Ok(())
    }
    fn handle_eof(&mut self, stream: ChildStream, _cx: &mut Context<'_>) -> io::Result<()> {
        self.0.borrow_mut().eof.push(stream);
        Ok(())
    }
    fn handle_exit(&mut self, status: ExitStatus, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut log = self.0.borrow_mut();
        log.eof_before_exit = log.eof.len();
        log.status = Some(status);
        Ok(())
    }
}

/// A child that writes both pipes, echoes its stdin and exits 7: its
/// output and EOFs are relayed, then its status; it is reaped (no zombie in
/// /proc), and a child the crate did not spawn keeps its status for its
/// owner.
#[test]
fn child_output_is_relayed_and_exit_status_seen_without_a_zombie() {
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        // Not ours: started outside the crate, exits during the loop.
        let mut foreign = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
        let log = std::rc::Rc::new(std::cell::RefCell::new(ChildLog::default()));
        let mut map = Map::new();
        let child = ChildProcess::spawn(
            Command::new("sh").args([
                "-c",
                "printf 'to stdout '; printf 'to stderr' >&2; cat; sleep 0.2; exit 7",
            ]),
            Relay(std::rc::Rc::clone(&log)),
            &mut map,
        )
        .unwrap();
        {
            let stdin = map.channel_mut(child.stdin()).unwrap();
            stdin.send(b"and its input").unwrap();
            stdin.close_when_done();
        }
        event_loop.timeout(None).run(&mut map).unwrap(); // until its channels are gone
        assert!(map.is_empty(), "{backend}: channels left: {map:?}");
        let log = log.borrow();
        assert_eq!(log.stdout, b"to stdout and its input", "{backend}");
        assert_eq!(log.stderr, b"to stderr", "{backend}");
        assert_eq!(log.eof.len(), 2, "{backend}: {:?}", log.eof);
        assert_eq!(
            log.eof_before_exit, 2,
            "{backend}: exit before the last output"
        );
        assert_eq!(log.status.and_then(|s| s.code()), Some(7), "{backend}");
        assert_eq!(
            process_state(child.id()),
            None,
            "{backend}: child {} left in /proc",
            child.id()
        );
        // The foreign child's status was not taken: its owner still gets it.
        let status = foreign
            .wait()
            .expect("the foreign child's status was taken");
        assert_eq!(status.code(), Some(5), "{backend}");
    }
}

/// A child killed by a signal: the status says so, and it is reaped.
#[test]
fn a_killed_child_is_reported_and_reaped() {
    use std::os::unix::process::ExitStatusExt;
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let log = std::rc::Rc::new(std::cell::RefCell::new(ChildLog::default()));
        let mut map = Map::new();
        let child = ChildProcess::spawn(
            Command::new("sh").args(["-c", "kill -TERM $$"]),
            Relay(std::rc::Rc::clone(&log)),
            &mut map,
        )
        .unwrap();
        event_loop.timeout(None).run(&mut map).unwrap();
        let status = log.borrow().status.expect("no exit status");
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{backend}: {status}");
        assert_eq!(process_state(child.id()), None, "{backend}");
    }
}

/// Closing a child's output channel (its stderr here, while the child
/// still runs) gives up that output, not the exit status: `handle_exit`
/// still comes, once stdout is done. (It never came: the exit waited for
/// the closed channel's end of file.)
#[test]
fn closing_an_output_channel_keeps_the_exit_status() {
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let log = std::rc::Rc::new(std::cell::RefCell::new(ChildLog::default()));
        let mut map = Map::new();
        let child = ChildProcess::spawn(
            // (Nothing written to stderr: a write to the closed pipe would
            // end the child with SIGPIPE.)
            Command::new("sh").args(["-c", "echo out; sleep 0.2; exit 5"]),
            Relay(std::rc::Rc::clone(&log)),
            &mut map,
        )
        .unwrap();
        assert!(map.close(child.stderr()));
        event_loop.timeout(None).run(&mut map).unwrap();
        let log = log.borrow();
        assert_eq!(
            log.status.and_then(|s| s.code()),
            Some(5),
            "{backend}: no exit status"
        );
        assert_eq!(log.stdout, b"out\n", "{backend}");
        assert!(
            log.stderr.is_empty(),
            "{backend}: the closed stderr relayed"
        );
        assert_eq!(process_state(child.id()), None, "{backend}: not reaped");
    }
}

/// Closes the channels it names when it fires.
struct CloseWhenDue(Vec<selectloop::Token>);

impl selectloop::Handler<selectloop::Timer> for CloseWhenDue {
    fn handle_timeout(
        &mut self,
        _t: &mut selectloop::Timer,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        for &token in &self.0 {
            cx.close(token);
        }
        Ok(())
    }
}

/// The same when the output channels are closed after the child was
/// reaped, while a grandchild still holds the pipes open (so no end of
/// file comes): the exit, waiting for the outputs, is delivered as they
/// close, not never.
#[test]
fn closing_the_outputs_after_the_reap_delivers_the_waiting_exit() {
    for (backend, event_loop) in loop_backends() {
        let _watchdog = Watchdog::new(backend);
        let log = std::rc::Rc::new(std::cell::RefCell::new(ChildLog::default()));
        let mut map = Map::new();
        let child = ChildProcess::spawn(
            Command::new("sh").args(["-c", "(sleep 3) & exit 7"]),
            Relay(std::rc::Rc::clone(&log)),
            &mut map,
        )
        .unwrap();
        map.add(
            selectloop::Timer::after(Duration::from_millis(300)),
            CloseWhenDue(vec![child.stdout(), child.stderr()]),
        );
        let start = Instant::now();
        event_loop.timeout(None).run(&mut map).unwrap();
        let took = start.elapsed();
        assert_eq!(
            log.borrow().status.and_then(|s| s.code()),
            Some(7),
            "{backend}: no exit status"
        );
        assert!(took < Duration::from_secs(2), "{backend}: took {took:?}");
    }
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Takes messages and does nothing with them.
struct Ignore;

impl selectloop::sources::MessageHandler<Counted> for Ignore {
    fn handle_message(&mut self, _msg: Counted, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }
}

/// Closing a message channel drops the messages it has not delivered at
/// once, while a sender still lives (they used to live as long as the
/// last sender), and a later send fails, giving its message back.
#[test]
fn closing_a_message_channel_drops_what_it_did_not_deliver() {
    for (backend, event_loop) in loop_backends() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = selectloop::sources::message_channel::<Counted>().unwrap();
        let mut map = Map::new();
        let channel = map.add(rx, Ignore);
        for _ in 0..10 {
            assert!(tx.send(Counted(Arc::clone(&drops))).is_ok());
        }
        assert!(map.close(channel));
        event_loop.timeout(Some(PATIENCE)).run(&mut map).unwrap();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            10,
            "{backend}: undelivered kept"
        );
        assert!(tx.is_closed(), "{backend}");
        assert!(tx.send(Counted(Arc::clone(&drops))).is_err(), "{backend}");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            11,
            "{backend}: the refused one"
        );
    }
}

/// The cross-thread types can cross threads: `Waker` is Send + Sync +
/// Clone, `Sender<T>` Send + Clone for a Send `T`.
#[test]
fn waker_and_sender_are_thread_safe() {
    fn waker<T: Send + Sync + Clone + 'static>() {}
    fn sender<T: Send + Clone + 'static>() {}
    waker::<selectloop::sources::Waker>();
    sender::<selectloop::sources::Sender<String>>();
    sender::<selectloop::sources::Sender<Vec<u8>>>();
}
