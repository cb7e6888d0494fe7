//! Timers and per-channel deadlines (`Timer`, `Dispatcher::set_timeout`,
//! `Handler::handle_timeout`): order, never early, re-arm and cancel, idle
//! timeouts pushed back by reads, and loops whose only work is a timer. Every
//! body runs on every backend.

#[macro_use]
mod common;

use selectloop::{Context, Dispatcher, Handler, Loop, Map, Stop, Timer, Token};
use std::cell::RefCell;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Fired = Rc<RefCell<Vec<(u32, Instant)>>>;

/// Records each firing with its time.
struct Record {
    id: u32,
    fired: Fired,
}

impl Handler<Timer> for Record {
    fn handle_timeout(&mut self, _t: &mut Timer, _cx: &mut Context<'_>) -> io::Result<()> {
        self.fired.borrow_mut().push((self.id, Instant::now()));
        Ok(())
    }
}

fn fire_in_deadline_order_and_never_early(lp: Loop) {
    let fired = Fired::default();
    let mut map = Map::new();
    let t0 = Instant::now();
    let mut due = Vec::new();
    for (id, ms) in [(0u32, 30u64), (1, 10), (2, 50), (3, 20), (4, 40), (5, 20)] {
        let when = t0 + Duration::from_millis(ms);
        due.push((id, when));
        map.add(
            Timer::at(when),
            Record {
                id,
                fired: fired.clone(),
            },
        );
    }
    let stop = lp
        .timeout(common::ITERATION_PATIENCE)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Empty, "fired one-shot timers leave the map");
    let fired = fired.borrow();
    assert_eq!(fired.len(), 6, "{fired:?}");
    for (id, at) in fired.iter() {
        let when = due[*id as usize].1;
        assert!(*at >= when, "timer {id} fired {:?} early", when - *at);
    }
    let order: Vec<u32> = fired.iter().map(|(id, _)| *id).collect();
    let mut by_deadline = due.clone();
    by_deadline.sort_by_key(|(id, when)| (*when, *id));
    let want: Vec<u32> = by_deadline.iter().map(|(id, _)| *id).collect();
    assert_eq!(order, want, "deadline order");
}

/// Re-arms itself `left` times, and on its first firing cancels `victim`.
struct Rearm {
    left: u32,
    fired: Fired,
    victim: Option<Token>,
}

impl Handler<Timer> for Rearm {
    fn handle_timeout(&mut self, t: &mut Timer, cx: &mut Context<'_>) -> io::Result<()> {
        self.fired.borrow_mut().push((0, Instant::now()));
        if let Some(victim) = self.victim.take() {
            assert!(cx.close(victim), "the victim was armed");
        }
        if self.left > 0 {
            self.left -= 1;
            t.set_timeout(Duration::from_millis(5));
        }
        Ok(())
    }
}

/// Cancels itself on its third firing.
struct ThreeTimes(Fired);

impl Handler<Timer> for ThreeTimes {
    fn handle_timeout(&mut self, t: &mut Timer, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut fired = self.0.borrow_mut();
        fired.push((9, Instant::now()));
        if fired.iter().filter(|(id, _)| *id == 9).count() == 3 {
            t.cancel();
        }
        Ok(())
    }
}

fn rearm_and_cancel(lp: Loop) {
    let fired = Fired::default();
    let mut map = Map::new();
    let victim = map.add(
        Timer::after(Duration::from_millis(40)),
        Record {
            id: 7,
            fired: fired.clone(),
        },
    );
    map.add(
        Timer::after(Duration::from_millis(5)),
        Rearm {
            left: 2,
            fired: fired.clone(),
            victim: Some(victim.token()),
        },
    );
    map.add(
        Timer::every(Duration::from_millis(3)),
        ThreeTimes(fired.clone()),
    );
    let stop = lp
        .timeout(common::ITERATION_PATIENCE)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Empty);
    let fired = fired.borrow();
    let count = |want: u32| fired.iter().filter(|(id, _)| *id == want).count();
    assert_eq!(count(0), 3, "fired once and re-armed twice: {fired:?}");
    assert_eq!(count(7), 0, "the cancelled timer never fired: {fired:?}");
    assert_eq!(count(9), 3, "the interval ran until it cancelled itself");
}

/// A connection with an idle timeout pushed back on every read.
struct Idle {
    idle: Duration,
    last_read: Rc<RefCell<Option<Instant>>>,
    timeouts: Rc<RefCell<Vec<Instant>>>,
}

impl Handler for Idle {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        if ch.recv(&mut buf)? > 0 {
            *self.last_read.borrow_mut() = Some(Instant::now());
            ch.set_timeout(self.idle);
        }
        Ok(())
    }
    fn handle_timeout(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.timeouts.borrow_mut().push(Instant::now());
        ch.close();
        cx.exit();
        Ok(())
    }
}

fn idle_timeout_is_pushed_back_by_reads(lp: Loop) {
    let idle = Duration::from_millis(150);
    let (server, client) = UnixStream::pair().unwrap();
    let writer = std::thread::spawn(move || {
        let mut client = client;
        for _ in 0..8 {
            std::thread::sleep(Duration::from_millis(40));
            client.write_all(b"x").unwrap();
        }
        client // kept open: the server must time out, not see EOF
    });
    let last_read = Rc::new(RefCell::new(None));
    let timeouts = Rc::new(RefCell::new(Vec::new()));
    let mut d = Dispatcher::from_socket(server).unwrap();
    d.set_timeout(idle);
    let mut map = Map::new();
    map.add(
        d,
        Idle {
            idle,
            last_read: last_read.clone(),
            timeouts: timeouts.clone(),
        },
    );
    let start = Instant::now();
    let stop = lp.timeout(None).run(&mut map).unwrap();
    let _client = writer.join().unwrap();
    assert_eq!(stop, Stop::Exit);
    let timeouts = timeouts.borrow();
    assert_eq!(timeouts.len(), 1);
    let last = last_read.borrow().expect("reads happened");
    assert!(
        timeouts[0] >= last + idle,
        "fired {:?} after the last read, idle timeout {idle:?}",
        timeouts[0] - last
    );
    assert!(
        timeouts[0] - start >= Duration::from_millis(8 * 40) + idle,
        "every read pushed the deadline back"
    );
}

fn timer_only_loop_runs_until_the_last_timer(lp: Loop) {
    for timeout in [None, Some(Duration::from_secs(30))] {
        let fired = Fired::default();
        let mut map = Map::new();
        map.add(
            Timer::after(Duration::from_millis(20)),
            Record {
                id: 1,
                fired: fired.clone(),
            },
        );
        let start = Instant::now();
        let stop = lp.clone().timeout(timeout).run(&mut map).unwrap();
        assert_eq!(stop, Stop::Empty, "timeout {timeout:?}");
        assert_eq!(fired.borrow().len(), 1);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(20) && took < Duration::from_secs(10),
            "{took:?}"
        );
    }
}

/// Ends the loop when it fires.
struct ExitAt;

impl Handler<Timer> for ExitAt {
    fn handle_timeout(&mut self, _t: &mut Timer, cx: &mut Context<'_>) -> io::Result<()> {
        cx.exit();
        Ok(())
    }
}

/// A quiet socket channel that waits for nothing in particular.
struct Quiet;

impl Handler for Quiet {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
}

fn deadline_shortens_a_blocking_wait(lp: Loop) {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut map = Map::new();
    map.add(Dispatcher::from_socket(a).unwrap(), Quiet);
    map.add(Timer::after(Duration::from_millis(10)), ExitAt);
    let stop = lp.timeout(None).run(&mut map).unwrap();
    assert_eq!(stop, Stop::Exit, "the blocking wait ended for the timer");
    assert_eq!(map.len(), 1, "the fired one-shot timer left the map");
}

/// An interval of `Duration::MAX` (in effect: never again) fires once and
/// re-arms far in the future; adding the period to the deadline used to
/// overflow `Instant` and panic inside the loop.
fn a_huge_interval_fires_once_without_overflow(lp: Loop) {
    let fired = Fired::default();
    let mut map = Map::new();
    let mut t = Timer::every(Duration::MAX);
    t.set_deadline(Some(Instant::now()));
    map.add(
        t,
        Record {
            id: 0,
            fired: fired.clone(),
        },
    );
    let stop = lp
        .timeout(Some(common::TICK))
        .count(5)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Count);
    assert_eq!(fired.borrow().len(), 1, "fired once, re-armed for never");
    assert_eq!(map.len(), 1, "an interval stays in the map");
}

/// Has input it never reads: every wait returns at once.
struct NeverReads;

impl Handler for NeverReads {
    fn handle_read(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
}

/// A channel closed with its deadline still queued does not cut the next
/// wait short: the wait says `timeout=none (block)`, not the minute left
/// of a deadline nobody holds any more.
fn a_closed_channels_deadline_does_not_shorten_the_wait(lp: Loop) {
    common::logs::install(log::LevelFilter::Trace);
    let before = common::logs::my_lines("selectloop").len();
    let (a, b) = UnixStream::pair().unwrap();
    (&b).write_all(b"x").unwrap();
    let mut map = Map::new();
    map.add(Dispatcher::from_socket(a).unwrap(), NeverReads);
    let timer = map.add(
        Timer::after(Duration::from_secs(60)),
        Record {
            id: 0,
            fired: Fired::default(),
        },
    );
    let mut one = lp.timeout(None).count(1);
    one.run(&mut map).unwrap(); // the deadline is queued
    assert!(map.close(timer));
    one.run(&mut map).unwrap();
    let lines = common::logs::my_lines("selectloop");
    let second = lines[before..]
        .iter()
        .find(|l| l.contains("iteration 2:"))
        .expect("a second iteration traced");
    assert!(second.contains("timeout=none (block)"), "{second}");
}

every_backend!(
    a_closed_channels_deadline_does_not_shorten_the_wait,
    a_huge_interval_fires_once_without_overflow,
    fire_in_deadline_order_and_never_early,
    rearm_and_cancel,
    idle_timeout_is_pushed_back_by_reads,
    timer_only_loop_runs_until_the_last_timer,
    deadline_shortens_a_blocking_wait,
);
