//! "What happens if you forget X": each classic mistake of a select/poll
//! loop, run twice, once with the mistake and once without, so the test
//! shows the symptom and that the fix removes it. The guide's chapter
//! `guide::forget_x` walks through them; run one with
//! `cargo test --test forget_x asking_for_pollout_always -- --nocapture`
//! to see the numbers.
//!
//! Every case is bounded in time (a few hundred milliseconds) and runs on
//! each backend it applies to.

use selectloop::sys::{poll, select, FdSet, PollFd, PollFlags};
use selectloop::{Context, Control, Dispatcher, Handler, Map};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The backends, in one place: the raw syscall each case waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Select,
    Poll,
}

const BACKENDS: [Backend; 2] = [Backend::Select, Backend::Poll];

impl Backend {
    /// One iteration of the crate's loop on this backend (asyncore's
    /// `poll` or `poll2`).
    fn iterate(self, map: &mut Map, timeout: Option<Duration>) -> io::Result<Control> {
        selectloop::Loop::new()
            .use_poll(self == Backend::Poll)
            .timeout(timeout)
            .iterate(map)
    }

    /// Waits until one of `fds` is readable (or `timeout`); the ready fds.
    fn wait_readable(self, fds: &[RawFd], timeout: Duration) -> Vec<RawFd> {
        match self {
            Backend::Select => {
                let mut r = FdSet::new();
                for fd in fds {
                    r.insert(*fd).expect("fd fits FD_SETSIZE");
                }
                let (mut w, mut x) = (FdSet::new(), FdSet::new());
                select(&mut r, &mut w, &mut x, Some(timeout)).expect("select");
                fds.iter().copied().filter(|fd| r.contains(*fd)).collect()
            }
            Backend::Poll => {
                let mut p: Vec<PollFd> = fds
                    .iter()
                    .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
                    .collect();
                poll(&mut p, Some(timeout)).expect("poll");
                p.iter()
                    .filter(|p| !p.revents().is_empty())
                    .map(|p| p.fd())
                    .collect()
            }
        }
    }
}

/// How many loop iterations run in `span` when each wait may last up to
/// `wait`: about `span / wait` for a loop that sleeps, thousands for one
/// that spins.
fn iterations_in(span: Duration, mut one: impl FnMut() -> bool) -> u32 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < span {
        n += 1;
        if !one() {
            break;
        }
    }
    n
}

const SPAN: Duration = Duration::from_millis(200);
const WAIT: Duration = Duration::from_millis(50);
/// Above this many iterations in [`SPAN`] the loop spun: a sleeping loop
/// makes about SPAN / WAIT = 4.
const SPIN: u32 = 100;

// ------------------------------------------------------------------------
// 1. Asking for POLLOUT (the write set) always.

/// A connection with nothing to send. `writable()` answers either
/// "always" (the mistake) or "only when there is something to send".
struct Quiet {
    always_writable: bool,
    write_events: Rc<Cell<u32>>,
}

impl Handler for Quiet {
    fn writable(&mut self, _ch: &Dispatcher) -> bool {
        self.always_writable
    }
    fn handle_write(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        // Nothing to send: the event was wasted.
        self.write_events.set(self.write_events.get() + 1);
        Ok(())
    }
    fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.recv(&mut [0u8; 64])?;
        Ok(())
    }
}

/// A socket's send buffer almost always has room, so a socket in the write
/// set is ready at once, every time: the loop never sleeps.
#[test]
fn asking_for_pollout_always_spins_the_loop() {
    for backend in BACKENDS {
        let mut counts = Vec::new();
        for always_writable in [true, false] {
            let (ours, _peer) = UnixStream::pair().unwrap();
            let write_events = Rc::new(Cell::new(0));
            let mut map = Map::new();
            map.add(
                Dispatcher::from_socket(ours).unwrap(),
                Quiet {
                    always_writable,
                    write_events: write_events.clone(),
                },
            );
            let n = iterations_in(SPAN, || backend.iterate(&mut map, Some(WAIT)).is_ok());
            println!(
                "{backend:?}, writable() always {always_writable}: {n} iterations, \
                 {} wasted write events in {SPAN:?}",
                write_events.get()
            );
            counts.push((n, write_events.get()));
        }
        let (spun, wasted) = counts[0];
        let (slept, none) = counts[1];
        assert!(spun > SPIN, "{backend:?}: only {spun} iterations: no spin?");
        assert!(wasted > SPIN, "{backend:?}: only {wasted} write events");
        assert!(slept <= 6, "{backend:?}: {slept} iterations while idle");
        assert_eq!(none, 0, "{backend:?}");
    }
}

// ------------------------------------------------------------------------
// 2. Forgetting non-blocking mode.

/// The right way to serve a ready fd is to read until it would block. On
/// a blocking socket that last read does not say "would block": it waits
/// for more data, and every other client waits too. (Each blocking socket
/// here has a 300 ms receive timeout, so the stall ends; in a real server
/// it lasts until that client sends again.)
#[test]
fn forgetting_non_blocking_mode_stalls_the_loop_in_recv() {
    const STALL: Duration = Duration::from_millis(300);
    for backend in BACKENDS {
        for blocking in [true, false] {
            let (a, mut a_peer) = UnixStream::pair().unwrap();
            let (b, mut b_peer) = UnixStream::pair().unwrap();
            for s in [&a, &b] {
                s.set_nonblocking(!blocking).unwrap();
                s.set_read_timeout(Some(STALL)).unwrap();
            }
            a_peer.write_all(b"a").unwrap();
            b_peer.write_all(b"b").unwrap();
            let start = Instant::now();
            let ready = backend.wait_readable(&[a.as_raw_fd(), b.as_raw_fd()], WAIT);
            assert_eq!(ready.len(), 2, "{backend:?}: both clients have data");
            let mut served_b_after = None;
            for (mut sock, name) in [(&a, "a"), (&b, "b")] {
                // Read until it would block.
                let mut buf = [0u8; 16];
                loop {
                    match sock.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => {
                            if name == "b" && served_b_after.is_none() {
                                served_b_after = Some(start.elapsed());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{backend:?}: read {name}: {e}"),
                    }
                }
            }
            let waited = served_b_after.expect("b was read");
            println!("{backend:?}, blocking sockets {blocking}: client b served after {waited:?}");
            if blocking {
                assert!(waited >= STALL, "{backend:?}: b served after {waited:?}");
            } else {
                assert!(waited < STALL, "{backend:?}: b waited {waited:?}");
            }
        }
    }
}

// ------------------------------------------------------------------------
// 3. Reusing a select set without rebuilding it.

/// select(2) overwrites its sets with the ready fds. A set passed again
/// as it came back watches only the fds that were ready last time: a
/// client that was quiet then is never heard from again. poll(2) keeps
/// `events` and writes only `revents`, so its array may be reused.
#[test]
fn reusing_a_select_set_forgets_the_quiet_fds_but_a_pollfd_array_is_reusable() {
    let (mut a, mut a_peer) = UnixStream::pair().unwrap();
    let (b, mut b_peer) = UnixStream::pair().unwrap();
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());

    // select: the set comes back holding only `a`.
    let mut reused = FdSet::new();
    reused.insert(fa).unwrap();
    reused.insert(fb).unwrap();
    a_peer.write_all(b"a").unwrap();
    let (mut w, mut x) = (FdSet::new(), FdSet::new());
    assert_eq!(select(&mut reused, &mut w, &mut x, Some(WAIT)).unwrap(), 1);
    assert!(reused.contains(fa) && !reused.contains(fb));
    a.read_exact(&mut [0u8; 1]).unwrap();

    b_peer.write_all(b"b").unwrap();
    // The mistake: pass the same set again. `b` is not in it any more.
    let n = select(&mut reused, &mut w, &mut x, Some(WAIT)).unwrap();
    assert_eq!(n, 0, "the reused set still watched b");
    // The fix: rebuild the set before every call.
    let mut rebuilt = FdSet::new();
    rebuilt.insert(fa).unwrap();
    rebuilt.insert(fb).unwrap();
    assert_eq!(select(&mut rebuilt, &mut w, &mut x, Some(WAIT)).unwrap(), 1);
    assert!(rebuilt.contains(fb));

    // poll: the same array, passed again, still watches both.
    let (mut c, mut c_peer) = UnixStream::pair().unwrap();
    let (d, mut d_peer) = UnixStream::pair().unwrap();
    let mut fds = [
        PollFd::new(c.as_raw_fd(), PollFlags::POLLIN),
        PollFd::new(d.as_raw_fd(), PollFlags::POLLIN),
    ];
    c_peer.write_all(b"c").unwrap();
    assert_eq!(poll(&mut fds, Some(WAIT)).unwrap(), 1);
    c.read_exact(&mut [0u8; 1]).unwrap();
    d_peer.write_all(b"d").unwrap();
    assert_eq!(
        poll(&mut fds, Some(WAIT)).unwrap(),
        1,
        "reused pollfd array"
    );
    assert!(fds[1].revents().contains(PollFlags::POLLIN));
    assert_eq!(fds[1].events(), PollFlags::POLLIN, "events are untouched");
}

// ------------------------------------------------------------------------
// 4. Closing without reading.

/// What the client received: bytes, and whether it ended in a clean end of
/// stream or an error.
fn client_receives(client: &mut TcpStream) -> (usize, Result<(), io::ErrorKind>) {
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match client.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got += n,
            Err(e) => return (got, Err(e.kind())),
        }
    }
}

/// A server answers a request it never read, and closes. With unread
/// bytes in its receive buffer, the kernel does not send a FIN after the
/// answer: it sends a reset at once and throws away what it had not sent
/// yet. The client loses most of the answer and gets ECONNRESET. The fix
/// (a *lingering close*, what this crate's close does): read what the
/// peer sent, or `shutdown(SHUT_WR)` and drain until its end of stream,
/// then close.
#[test]
fn closing_without_reading_resets_the_peer_and_loses_the_answer() {
    for read_first in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(20)); // the request arrives
        if read_first {
            let mut req = [0u8; 64];
            let n = server.read(&mut req).unwrap();
            assert_eq!(&req[..n], b"GET / HTTP/1.0\r\n\r\n");
        }
        // The answer: as much as the kernel takes without blocking (the
        // client reads nothing yet, so most of it waits in buffers).
        server.set_nonblocking(true).unwrap();
        let chunk = vec![b'x'; 1 << 16];
        let mut sent = 0;
        loop {
            match server.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        if read_first {
            // Lingering close: no more output, wait for the peer's end of
            // stream (the client closes after reading), then close.
            server.shutdown(std::net::Shutdown::Write).unwrap();
            let (got, end) = client_receives(&mut client);
            println!("read first: sent {sent}, client got {got}, {end:?}");
            assert_eq!(got, sent);
            assert_eq!(end, Ok(()));
        } else {
            drop(server);
            std::thread::sleep(Duration::from_millis(20));
            let (got, end) = client_receives(&mut client);
            println!("closed without reading: sent {sent}, client got {got}, {end:?}");
            assert!(got < sent, "the client got the whole answer ({got} bytes)");
            assert_eq!(end, Err(io::ErrorKind::ConnectionReset));
        }
    }
}

// ------------------------------------------------------------------------
// 5. Ignoring POLLHUP (on select: ignoring the read of 0).

/// A pipe whose writer has gone: poll(2) reports `POLLHUP` (without
/// `POLLIN`: there is nothing left to read) on every call, even though
/// only `POLLIN` was asked for. A loop that looks only at `POLLIN` does
/// nothing and asks again: a 100% CPU spin. select(2) has no `POLLHUP`: it
/// calls the fd readable, and a loop that does not treat `read` returning
/// 0 as the end and drop the fd spins the same way.
#[test]
fn ignoring_pollhup_or_end_of_stream_spins_the_loop() {
    for backend in BACKENDS {
        for ignore_hangup in [true, false] {
            let (reader, writer): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
            drop(writer); // the writer exits
            let mut file = std::fs::File::from(reader);
            let mut watching = true;
            let n = iterations_in(SPAN, || {
                if !watching {
                    // Nothing left to watch: the loop sleeps its timeout.
                    std::thread::sleep(WAIT);
                    return true;
                }
                match backend {
                    Backend::Poll => {
                        let mut p = [PollFd::new(file.as_raw_fd(), PollFlags::POLLIN)];
                        poll(&mut p, Some(WAIT)).unwrap();
                        let revents = p[0].revents();
                        if revents.contains(PollFlags::POLLIN) {
                            let _ = file.read(&mut [0u8; 16]);
                        }
                        if revents.contains(PollFlags::POLLHUP) && !ignore_hangup {
                            watching = false;
                        }
                    }
                    Backend::Select => {
                        let ready = backend.wait_readable(&[file.as_raw_fd()], WAIT);
                        if !ready.is_empty() {
                            let n = file.read(&mut [0u8; 16]).unwrap();
                            if n == 0 && !ignore_hangup {
                                watching = false;
                            }
                        }
                    }
                }
                true
            });
            println!("{backend:?}, hang-up ignored {ignore_hangup}: {n} iterations in {SPAN:?}");
            if ignore_hangup {
                assert!(n > SPIN, "{backend:?}: only {n} iterations: no spin?");
            } else {
                assert!(n <= 6, "{backend:?}: {n} iterations after the hang-up");
            }
        }
    }
}
