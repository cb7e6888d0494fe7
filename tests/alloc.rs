//! Steady state allocates nothing: once the channels are registered and the
//! buffers have grown, an iteration of the loop (select or poll) performs
//! no heap allocation at all, also while timers fire and re-arm and idle
//! timeouts are pushed back on every read.
//!
//! A counting global allocator counts the allocations of the thread that
//! runs the loop only (a thread-local switch), so the test harness and other
//! threads cannot pollute the count. One test, every backend in turn.

// The backend list and the timeouts are shared (tests/common).
mod common;

use selectloop::{
    Context, Dispatcher, DispatcherWithSend, Domain, Handler, Loop, Map, Timer, Type,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set only around the measured iterations, on the loop's thread.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    // try_with: the thread-local may be gone while a thread exits.
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counting touches only an atomic and a const-initialised thread-local,
// neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One end of a ping-pong: sends a byte when it has the turn, reads the
/// answer, and takes the turn again.
struct Pinger {
    turn: bool,
    round_trips: usize,
}

impl Handler for Pinger {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        self.turn
    }
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        if ch.send(b"p")? == 1 {
            self.turn = false;
        }
        Ok(())
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        let mut buf = [0u8; 64];
        if ch.recv(&mut buf)? > 0 {
            self.turn = true;
            self.round_trips += 1;
        }
        Ok(())
    }
}

/// The other end: an echo on dispatcher_with_send.
struct Echo;

impl Handler<DispatcherWithSend> for Echo {
    fn handle_read(
        &mut self,
        ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut buf = [0u8; 64];
        let n = ch.recv(&mut buf)?;
        ch.send(&buf[..n])?;
        // An idle timeout pushed back on every read.
        ch.set_timeout(Duration::from_secs(60));
        Ok(())
    }
}

/// A timer firing and re-arming on every iteration.
struct Ticker {
    ticks: usize,
}

impl Handler<Timer> for Ticker {
    fn handle_timeout(&mut self, t: &mut Timer, _cx: &mut Context<'_>) -> io::Result<()> {
        self.ticks += 1;
        if self.ticks % 2 == 0 {
            t.set_timeout(Duration::ZERO); // one-shot re-armed by its handler
        }
        Ok(())
    }
}

/// A listener nobody connects to: in the read set every iteration.
struct Idle;
impl Handler for Idle {}

#[test]
fn steady_state_iterations_allocate_nothing() {
    for backend in common::LOOP_BACKENDS {
        let mut map = Map::new();
        let mut pingers = Vec::new();
        for _ in 0..4 {
            let (a, b) = UnixStream::pair().unwrap();
            pingers.push(map.add(
                Dispatcher::from_socket(a).unwrap(),
                Pinger {
                    turn: true,
                    round_trips: 0,
                },
            ));
            map.add(
                DispatcherWithSend::new(Dispatcher::from_socket(b).unwrap()),
                Echo,
            );
        }
        let mut listener = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        listener
            .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .unwrap();
        listener.listen(5).unwrap();
        map.add(listener, Idle);
        // Fires every iteration: re-armed by the interval, or by its handler.
        let ticker = map.add(Timer::every(Duration::from_nanos(1)), Ticker { ticks: 0 });

        const N: u64 = 500;
        // One loop throughout: it keeps the backend's buffers (the pollfd
        // array, the fd sets) between runs.
        let mut lp = Loop::new()
            .timeout(common::ITERATION_PATIENCE)
            .backend(backend)
            .count(N);
        // Warm up: the buffers reach their size.
        lp.run(&mut map).unwrap();
        let ticks_before = map.handler_mut(ticker).unwrap().ticks;
        let before: usize = pingers
            .iter()
            .map(|t| map.handler_mut(*t).unwrap().round_trips)
            .sum();

        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        let result = lp.run(&mut map);
        COUNTING.with(|c| c.set(false));
        let allocations = ALLOCATIONS.load(Ordering::Relaxed);
        result.unwrap();

        let after: usize = pingers
            .iter()
            .map(|t| map.handler_mut(*t).unwrap().round_trips)
            .sum();
        assert!(
            after - before >= N as usize,
            "{backend}: the channels were busy ({} round trips in {N} iterations)",
            after - before
        );
        let ticks = map.handler_mut(ticker).unwrap().ticks - ticks_before;
        assert!(
            ticks >= N as usize / 2,
            "{backend}: the timer fired {ticks} times in {N} iterations"
        );
        assert_eq!(
            allocations, 0,
            "{backend}: {allocations} heap allocations in {N} steady-state iterations"
        );
        map.close_all();
    }
}
