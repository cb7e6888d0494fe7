//! `Predicates::AfterOwnEvents`: the loop asks `readable()`/`writable()`
//! only when the channel is added, after its own events, and after it is
//! reached through `get_mut` / `update_interest`; everything a channel can
//! change about its wishes still reaches the backend. Every body runs on
//! every backend.

#[macro_use]
mod common;

use selectloop::{
    Context, Dispatcher, DispatcherWithSend, Handle, Handler, Loop, Map, Predicates, Stop, Timer,
};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

/// Counts how often its predicates are asked; reads what arrives.
struct Counted {
    asked: Rc<Cell<usize>>,
    wants_read: Rc<Cell<bool>>,
    got: Rc<Cell<usize>>,
}

impl Counted {
    fn new() -> Self {
        Counted {
            asked: Rc::default(),
            wants_read: Rc::new(Cell::new(true)),
            got: Rc::default(),
        }
    }
}

macro_rules! counted_impl {
    () => {
        fn readable(&mut self, _ch: &Dispatcher) -> bool {
            self.asked.set(self.asked.get() + 1);
            self.wants_read.get()
        }
        fn writable(&mut self, _ch: &Dispatcher) -> bool {
            false
        }
        fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
            let n = ch.recv(&mut [0u8; 64])?;
            self.got.set(self.got.get() + n);
            Ok(())
        }
    };
}

struct Fast(Counted);
impl std::ops::Deref for Fast {
    type Target = Counted;
    fn deref(&self) -> &Counted {
        &self.0
    }
}
impl Handler for Fast {
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;
    counted_impl!();
}

struct Slow(Counted);
impl std::ops::Deref for Slow {
    type Target = Counted;
    fn deref(&self) -> &Counted {
        &self.0
    }
}
impl Handler for Slow {
    counted_impl!();
}

/// Fires every millisecond: keeps the loop iterating.
struct Tick;
impl Handler<Timer> for Tick {
    fn handle_timeout(&mut self, _t: &mut Timer, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }
}

fn idle_fast_channels_are_not_asked_every_iteration(lp: Loop) {
    let (a, _pa) = UnixStream::pair().unwrap();
    let (b, _pb) = UnixStream::pair().unwrap();
    let fast = Fast(Counted::new());
    let slow = Slow(Counted::new());
    let (fast_asked, slow_asked) = (fast.asked.clone(), slow.asked.clone());
    let mut map = Map::new();
    map.add(Dispatcher::from_socket(a).unwrap(), fast);
    map.add(Dispatcher::from_socket(b).unwrap(), slow);
    map.add(Timer::every(Duration::from_millis(1)), Tick);
    let stop = lp
        .timeout(Duration::from_millis(50))
        .count(30)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Count);
    assert!(
        slow_asked.get() >= 30,
        "asyncore's rule: {}",
        slow_asked.get()
    );
    assert_eq!(fast_asked.get(), 1, "asked once, when added");
}

fn a_fast_channel_is_asked_again_after_its_own_event(lp: Loop) {
    let (a, mut peer) = UnixStream::pair().unwrap();
    let fast = Fast(Counted::new());
    let (asked, got) = (fast.asked.clone(), fast.got.clone());
    let mut map = Map::new();
    map.add(Dispatcher::from_socket(a).unwrap(), fast);
    let mut lp = lp.timeout(Duration::from_millis(20)).count(1);
    lp.run(&mut map).unwrap();
    peer.write_all(b"abc").unwrap();
    lp.run(&mut map).unwrap();
    assert_eq!(got.get(), 3);
    assert_eq!(asked.get(), 2, "asked when added and after its read");
}

/// A buffered channel: output queued from another channel through
/// `get_mut` must make the loop watch it for writing.
struct Sink;
impl Handler<DispatcherWithSend> for Sink {
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;
}

/// Pushes a line into `to` from its own timer event.
struct PushFrom {
    to: Handle<DispatcherWithSend, Sink>,
}
impl Handler<Timer> for PushFrom {
    fn handle_timeout(&mut self, _t: &mut Timer, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(sink) = cx.channel_mut(self.to) {
            sink.send(b"pushed")?;
        }
        Ok(())
    }
}

fn output_queued_through_get_mut_is_written(lp: Loop) {
    let (a, mut peer) = UnixStream::pair().unwrap();
    // Fill the socket buffer so the push is queued, not sent at once.
    a.set_nonblocking(true).unwrap();
    let mut filled = 0;
    while let Ok(n) = (&a).write(&[0u8; 65536]) {
        filled += n;
    }
    let mut map = Map::new();
    let sink = map.add(
        DispatcherWithSend::new(Dispatcher::from_socket(a).unwrap()),
        Sink,
    );
    map.add(
        Timer::after(Duration::from_millis(5)),
        PushFrom { to: sink },
    );
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = vec![0u8; filled + 6];
        peer.read_exact(&mut buf).unwrap();
        buf[filled..].to_vec()
    });
    let mut lp = lp.timeout(Duration::from_millis(20)).count(1);
    for _ in 0..200 {
        lp.run(&mut map).unwrap();
        if map.channel_mut(sink).is_some_and(|s| s.pending() == 0) && reader.is_finished() {
            break;
        }
    }
    assert_eq!(reader.join().unwrap(), b"pushed");
}

/// Its deadline, set in `handle_read`, reaches the timer queue.
struct DeadlineOnRead {
    fired: Rc<Cell<bool>>,
}
impl Handler for DeadlineOnRead {
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.recv(&mut [0u8; 64])?;
        ch.set_timeout(Duration::from_millis(10));
        Ok(())
    }
    fn handle_timeout(&mut self, _ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        self.fired.set(true);
        cx.exit();
        Ok(())
    }
}

fn a_deadline_set_in_its_own_event_fires(lp: Loop) {
    let (a, mut peer) = UnixStream::pair().unwrap();
    let fired = Rc::new(Cell::new(false));
    let mut map = Map::new();
    map.add(
        Dispatcher::from_socket(a).unwrap(),
        DeadlineOnRead {
            fired: fired.clone(),
        },
    );
    peer.write_all(b"x").unwrap();
    let stop = lp
        .timeout(common::ITERATION_PATIENCE)
        .count(100)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Exit);
    assert!(fired.get());
}

fn update_interest_makes_the_loop_ask_again(lp: Loop) {
    let (a, mut peer) = UnixStream::pair().unwrap();
    let fast = Fast(Counted::new());
    fast.wants_read.set(false);
    let (wants, got) = (fast.wants_read.clone(), fast.got.clone());
    let mut map = Map::new();
    let h = map.add(Dispatcher::from_socket(a).unwrap(), fast);
    peer.write_all(b"abcd").unwrap();
    let mut lp = lp.timeout(Duration::from_millis(10)).count(3);
    lp.run(&mut map).unwrap();
    assert_eq!(got.get(), 0, "not readable: not read");
    wants.set(true); // changed behind the loop's back...
    lp.run(&mut map).unwrap();
    assert_eq!(got.get(), 0, "...so the loop does not know yet");
    map.update_interest(h);
    lp.run(&mut map).unwrap();
    assert_eq!(got.get(), 4, "told, it reads");
}

every_backend!(
    idle_fast_channels_are_not_asked_every_iteration,
    a_fast_channel_is_asked_again_after_its_own_event,
    output_queued_through_get_mut_is_written,
    a_deadline_set_in_its_own_event_fires,
    update_interest_makes_the_loop_ask_again,
);
