//! Graceful shutdown (`Context::shutdown`): listeners close, every queued
//! byte is delivered before a buffered channel closes, and the grace period
//! closes whatever is left. Every body runs on every backend.

#[macro_use]
mod common;

use selectloop::{
    Context, Dispatcher, DispatcherWithSend, Domain, Handler, Loop, Map, Stop, Timer, Type,
};
use std::io::{self, Read};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Starts the shutdown when it fires.
struct ShutdownAt(Duration);

impl Handler<Timer> for ShutdownAt {
    fn handle_timeout(&mut self, _t: &mut Timer, cx: &mut Context<'_>) -> io::Result<()> {
        cx.shutdown(self.0);
        Ok(())
    }
}

/// A buffered channel that only sends.
struct Sender;

impl Handler<DispatcherWithSend> for Sender {}

/// A listener nobody connects to.
struct Listener;

impl Handler for Listener {}

fn listener() -> Dispatcher {
    let mut d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    d.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    d.listen(5).unwrap();
    d
}

/// A channel with `len` bytes queued for a peer that reads slowly.
fn queued(map: &mut Map, len: usize) -> UnixStream {
    let (a, b) = UnixStream::pair().unwrap();
    let mut ch =
        DispatcherWithSend::new(Dispatcher::from_socket(a).unwrap()).with_output_limit(len + 1);
    let data = common::random_bytes(len, len as u64);
    ch.send(&data).unwrap();
    map.add(ch, Sender);
    b
}

fn delivers_every_queued_byte(lp: Loop) {
    const LEN: usize = 3 << 20;
    let mut map = Map::new();
    map.add(listener(), Listener);
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut peer = queued(&mut map, LEN);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 65536];
                loop {
                    match peer.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                got
            })
        })
        .collect();
    map.add(
        Timer::after(Duration::from_millis(20)),
        ShutdownAt(Duration::from_secs(20)),
    );
    let stop = lp.timeout(Duration::from_secs(30)).run(&mut map).unwrap();
    assert_eq!(stop, Stop::Shutdown);
    assert!(map.is_empty());
    let want = common::random_bytes(LEN, LEN as u64);
    for r in readers {
        let got = r.join().unwrap();
        assert_eq!(got.len(), LEN, "every queued byte arrived");
        assert!(got == want, "byte-exact");
    }
}

fn grace_period_closes_what_is_left(lp: Loop) {
    let mut map = Map::new();
    map.add(listener(), Listener);
    let _never_reads = queued(&mut map, 8 << 20);
    let grace = Duration::from_millis(200);
    map.shutdown(grace);
    let start = Instant::now();
    let stop = lp.timeout(None).run(&mut map).unwrap();
    let took = start.elapsed();
    assert_eq!(stop, Stop::Shutdown);
    assert!(map.is_empty());
    assert!(
        took >= grace,
        "closed before the grace period ended: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Adds a channel of its own (a listener: nothing wakes the loop for it)
/// when told to shut down, then closes (and, with `exit`, stops the loop
/// too).
struct Spawner(Option<Dispatcher>, bool);

impl Handler for Spawner {
    fn handle_shutdown(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(d) = self.0.take() {
            cx.add(d, Listener);
        }
        ch.close();
        if self.1 {
            cx.exit();
        }
        Ok(())
    }
}

/// A channel that joins during the shutdown (added by a handler being
/// told, here) is told too: its default `handle_shutdown` closes it, and
/// the loop ends without waiting out the grace period. (It used to be
/// told nothing, and the loop waited the whole grace period.)
fn a_channel_added_during_the_shutdown_is_told_too(lp: Loop) {
    shutdown_with_a_newcomer(lp, false);
}

/// The same across runs: the loop stops (`cx.exit()`) right after the
/// newcomer joins, and the next run, by a new loop (which registers every
/// channel afresh), still tells it, once.
fn a_channel_that_joined_is_told_by_the_next_run(lp: Loop) {
    shutdown_with_a_newcomer(lp, true);
}

/// A shutdown during which a told channel adds a newcomer (and, with
/// `exit_first`, stops the loop, which is run again): it ends, with the
/// map empty, well before its grace period. The newcomer lands in the slot
/// of a channel told (and closed) just before, behind the walk over the
/// slots: it is told in the same step all the same.
fn shutdown_with_a_newcomer(lp: Loop, exit_first: bool) {
    let mut map = Map::new();
    map.add(listener(), Listener); // slot 0, freed when told
    map.add(listener(), Spawner(Some(listener()), exit_first));
    let grace = Duration::from_secs(5);
    map.shutdown(grace);
    let start = Instant::now();
    if exit_first {
        let stop = lp.clone().timeout(None).run(&mut map).unwrap();
        assert_eq!(stop, Stop::Exit);
        assert_eq!(map.len(), 1, "the newcomer is in the map");
    }
    let stop = lp.timeout(None).run(&mut map).unwrap();
    let took = start.elapsed();
    assert_eq!(stop, Stop::Shutdown);
    assert!(map.is_empty());
    assert!(took < grace / 2, "waited for the grace period: {took:?}");
}

/// A timer that does nothing when it fires (and, one-shot, leaves).
struct Fires;

impl Handler<Timer> for Fires {}

/// Closes when told, and stops the loop.
struct StopsTheLoop;

impl Handler for StopsTheLoop {
    fn handle_shutdown(&mut self, ch: &mut Dispatcher, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        cx.exit();
        Ok(())
    }
}

/// A handler that stops the loop while the channels are being told: the
/// same loop, run again, tells the rest (it skipped them, and waited out
/// the grace period).
fn the_same_loop_tells_the_rest_after_an_exit(lp: Loop) {
    let mut map = Map::new();
    map.add(listener(), StopsTheLoop);
    map.add(listener(), Listener);
    let grace = Duration::from_secs(5);
    map.shutdown(grace);
    let start = Instant::now();
    let mut lp = lp.timeout(None);
    assert_eq!(lp.run(&mut map).unwrap(), Stop::Exit);
    assert_eq!(lp.run(&mut map).unwrap(), Stop::Shutdown);
    assert!(map.is_empty());
    let took = start.elapsed();
    assert!(took < grace / 2, "waited for the grace period: {took:?}");
}

/// A map driven by `iterate` leaves the drain once it is empty: a channel
/// added later is neither told nor closed when the old grace period runs
/// out, and a new shutdown can be asked for.
fn a_drained_map_driven_by_iterate_is_running_again(lp: Loop) {
    let mut map = Map::new();
    map.add(listener(), Listener);
    map.shutdown(Duration::from_millis(100));
    let mut one = lp.timeout(Some(common::TICK));
    while !map.is_empty() {
        one.iterate(&mut map).unwrap();
    }
    let later = map.add(listener(), Listener);
    std::thread::sleep(Duration::from_millis(150)); // the old grace is over
    one.iterate(&mut map).unwrap();
    assert!(
        map.contains(later),
        "a channel added after the drain was shut down"
    );
    map.shutdown(Duration::from_millis(100));
    one.iterate(&mut map).unwrap();
    assert!(map.is_empty(), "the new shutdown told it");
    // Drained again through `iterate`: a later run that simply empties the
    // map says so (`Empty`), not `Shutdown`.
    map.add(Timer::after(Duration::from_millis(10)), Fires);
    assert_eq!(one.timeout(None).run(&mut map).unwrap(), Stop::Empty);
}

every_backend!(
    delivers_every_queued_byte,
    grace_period_closes_what_is_left,
    a_channel_added_during_the_shutdown_is_told_too,
    a_channel_that_joined_is_told_by_the_next_run,
    a_drained_map_driven_by_iterate_is_running_again,
    the_same_loop_tells_the_rest_after_an_exit,
);
