//! EMFILE on accept, in a test binary of its own: it lowers the process's
//! fd limit (RLIMIT_NOFILE), which would break any test running beside it.
//! One test, run on every backend (`common::LOOP_BACKENDS`) one after the
//! other.
//!
//! asyncore's accept raises on EMFILE and the default handle_error closes
//! the *listening* socket; a naive fix (ignore the error) spins at 100% CPU
//! because the listener stays readable. Here the listener stays open, leaves
//! the read set for a while (no spin), and accepts again once fds free up.

// The backend list and the timeouts are shared (tests/common).
mod common;

use selectloop::{
    Context, Dispatcher, Domain, Handler, Loop, Map, Predicates, SockAddr, Socket, Type,
};
use std::cell::Cell;
use std::io;
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Keeps what it accepts. `FAST`: its predicates are asked only after its
/// own events ([`Predicates::AfterOwnEvents`]), as `echo_server`'s
/// listener's are: each pause must still take it out of the read set.
struct Listener<const FAST: bool> {
    accepted: Rc<Cell<usize>>,
    errors: Rc<Cell<usize>>,
    keep: Vec<Socket>,
}

impl<const FAST: bool> Handler for Listener<FAST> {
    const PREDICATES: Predicates = if FAST {
        Predicates::AfterOwnEvents
    } else {
        Predicates::EveryIteration
    };

    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        sock: Socket,
        _addr: SockAddr,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        self.accepted.set(self.accepted.get() + 1);
        self.keep.push(sock);
        Ok(())
    }
    fn handle_error(&mut self, ch: &mut Dispatcher, err: io::Error, _cx: &mut Context<'_>) {
        eprintln!("handle_error: {err}");
        self.errors.set(self.errors.get() + 1);
        ch.close();
    }
}

/// Closes itself at its first write event.
struct CloseOnWrite;

impl Handler for CloseOnWrite {
    fn readable(&mut self, _ch: &Dispatcher) -> bool {
        false
    }
    fn handle_write(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        Ok(())
    }
}

/// Opens /dev/null until the process is out of fds; returns them all.
fn exhaust_fds() -> Vec<OwnedFd> {
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(OwnedFd::from(f)),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return fillers,
            Err(e) => panic!("unexpected error while exhausting fds: {e}"),
        }
        assert!(fillers.len() < 10_000, "the fd limit did not apply");
    }
}

#[test]
fn emfile_on_accept_keeps_listening_without_spinning_and_accepts_later() {
    for backend in common::LOOP_BACKENDS {
        emfile_on_accept::<false>(backend);
        emfile_on_accept::<true>(backend);
    }
}

fn emfile_on_accept<const FAST: bool>(backend: selectloop::Backend) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let name = format!("{backend}{}", if FAST { " (AfterOwnEvents)" } else { "" });
    {
        const CLIENTS: usize = 3;
        let mut server = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        server
            .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .unwrap();
        server.listen(16).unwrap();
        let addr = server.addr().unwrap().as_socket().unwrap();
        let accepted = Rc::new(Cell::new(0));
        let errors = Rc::new(Cell::new(0));
        let mut map = Map::new();
        let lt = map.add(
            server,
            Listener::<FAST> {
                accepted: accepted.clone(),
                errors: errors.clone(),
                keep: Vec::new(),
            },
        );
        // One loop throughout, started while fds are still there, as a
        // daemon starts its loop: it keeps its backend (an epoll instance
        // is an fd, which could not be made once they run out).
        let mut lp = Loop::new()
            .timeout(Duration::ZERO)
            .backend(backend)
            .count(1);
        lp.run(&mut map)
            .expect("a first iteration with fds to spare");
        let mut lp = lp.timeout(Duration::from_secs(1));
        // The clients connect before fds run out; their connections wait in
        // the listener's backlog.
        let clients: Vec<TcpStream> = (0..CLIENTS)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        // No fd left: a low limit, then fill every free number below it.
        setrlimit(Resource::RLIMIT_NOFILE, 256.min(soft), hard).unwrap();
        let mut fillers = exhaust_fds();

        // Over a fixed window, count iterations: a loop that keeps the
        // readable listener in its set would return at once every time
        // (tens of thousands of passes); a paused one waits.
        let window = Duration::from_millis(500);
        let start = Instant::now();
        let mut iterations = 0u32;
        while start.elapsed() < window {
            lp.run(&mut map).expect("the loop never fails on EMFILE");
            iterations += 1;
        }
        eprintln!("{name}: {iterations} iterations in {window:?} while out of fds");
        assert_eq!(
            accepted.get(),
            0,
            "{name}: nothing can be accepted without fds"
        );
        assert_eq!(
            errors.get(),
            0,
            "{name}: EMFILE is not an error for the listener"
        );
        assert!(map.contains(lt), "{name}: the listener stays in the map");
        assert!(map.dispatcher_mut(lt).unwrap().accepting(), "{name}");
        assert!(
            iterations < 200,
            "{name}: the loop spun: {iterations} iterations in {window:?}"
        );

        // Free some fds: the pending connections are accepted.
        fillers.truncate(fillers.len().saturating_sub(CLIENTS + 2));
        let deadline = Instant::now() + common::PATIENCE;
        while accepted.get() < CLIENTS {
            assert!(Instant::now() < deadline, "{name}: never accepted again");
            lp.run(&mut map).unwrap();
        }
        assert_eq!(errors.get(), 0, "{name}");
        drop(fillers);

        // A channel closing in the same pass as the failed accept frees an
        // fd: the listener must try again at the next pass, not sit out the
        // rest of its back-off.
        let late_client = TcpStream::connect(addr).unwrap();
        let (c, _c_peer) = UnixStream::pair().unwrap();
        let mut fillers = exhaust_fds();
        let ct = map.add(Dispatcher::from_socket(c).unwrap(), CloseOnWrite); // after the listener
        let mut one = lp.timeout(common::ITERATION_PATIENCE);
        one.run(&mut map).unwrap();
        assert_eq!(
            accepted.get(),
            CLIENTS,
            "{name}: the accept failed (EMFILE)"
        );
        assert!(
            !map.contains(ct),
            "{name}: the channel closed in the same pass"
        );
        one.run(&mut map).unwrap();
        assert_eq!(
            accepted.get(),
            CLIENTS + 1,
            "{name}: a channel closed, yet the listener did not accept at the next pass"
        );
        fillers.clear();
        drop(late_client);
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
        map.close_all();
        drop(clients);
    }
}
