//! Address families for tests that run one body on every backend × family
//! (`every_backend_and_family!`): [`Env`] makes the sockets, addresses and
//! loops of one combination, so a body is written once.

use super::{PATIENCE, TICK};
use selectloop::{Backend, Dispatcher, Domain, Loop, Map, SockAddr, Socket, Type};
use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

/// An address family a test body runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fam {
    /// TCP over 127.0.0.1.
    V4,
    /// TCP over ::1 (skipped where the machine has no IPv6).
    V6,
    /// Unix stream sockets at fresh paths in the temporary directory.
    Unix,
}

/// One backend × family combination, and the Unix socket paths it made
/// (removed on drop). Displays as `select/V4`, for assertion messages.
pub struct Env {
    pub backend: Backend,
    pub fam: Fam,
    paths: RefCell<Vec<PathBuf>>,
}

impl fmt::Display for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{:?}", self.backend.name(), self.fam)
    }
}

impl Env {
    /// `None` (with a note) if the family is not available here (no IPv6).
    pub fn new(backend: Backend, fam: Fam) -> Option<Env> {
        if fam == Fam::V6 {
            let probe = Socket::new(Domain::IPV6, Type::STREAM, None)
                .and_then(|s| s.bind(&"[::1]:0".parse::<std::net::SocketAddr>().unwrap().into()));
            if let Err(e) = probe {
                eprintln!("skipped: IPv6 (::1) is not available here: {e}");
                return None;
            }
        }
        Some(Env {
            backend,
            fam,
            paths: RefCell::new(Vec::new()),
        })
    }

    pub fn domain(&self) -> Domain {
        match self.fam {
            Fam::V4 => Domain::IPV4,
            Fam::V6 => Domain::IPV6,
            Fam::Unix => Domain::UNIX,
        }
    }

    /// TCP (IPv4 or IPv6), not Unix.
    pub fn is_inet(&self) -> bool {
        self.fam != Fam::Unix
    }

    /// An address to bind to: port 0 on loopback, or a fresh socket path.
    pub fn bind_addr(&self) -> SockAddr {
        match self.fam {
            Fam::V4 => "127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            Fam::V6 => "[::1]:0".parse::<std::net::SocketAddr>().unwrap().into(),
            Fam::Unix => {
                let path = super::temp_path("unix").with_extension("sock");
                let _ = std::fs::remove_file(&path);
                self.paths.borrow_mut().push(path.clone());
                SockAddr::unix(path).unwrap()
            }
        }
    }

    /// A new non-blocking stream dispatcher of this family.
    pub fn stream(&self) -> Dispatcher {
        Dispatcher::create_socket(self.domain(), Type::STREAM).unwrap()
    }

    /// A listening dispatcher (asyncore's BaseServer) and its address.
    pub fn listener(&self) -> (Dispatcher, SockAddr) {
        let mut d = self.stream();
        d.set_reuse_addr().unwrap();
        d.bind(self.bind_addr()).unwrap();
        d.listen(5).unwrap();
        let addr = d.addr().unwrap().clone();
        (d, addr)
    }

    /// A dispatcher connecting to `addr` (asyncore's BaseClient).
    pub fn client(&self, addr: &SockAddr) -> Dispatcher {
        let mut d = self.stream();
        d.connect(addr.clone()).unwrap();
        d
    }

    /// A blocking listening socket (for peer threads) and its address.
    pub fn blocking_listener(&self) -> (Socket, SockAddr) {
        let s = Socket::new(self.domain(), Type::STREAM, None).unwrap();
        s.bind(&self.bind_addr()).unwrap();
        s.listen(5).unwrap();
        let addr = s.local_addr().unwrap();
        (s, addr)
    }

    /// Two connected sockets of this family (blocking, with timeouts of
    /// [`PATIENCE`]).
    pub fn socket_pair(&self) -> (Socket, Socket) {
        let (l, addr) = self.blocking_listener();
        let a = Socket::new(self.domain(), Type::STREAM, None).unwrap();
        a.connect(&addr).unwrap();
        let (b, _) = l.accept().unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(PATIENCE)).unwrap();
            s.set_write_timeout(Some(PATIENCE)).unwrap();
        }
        (a, b)
    }

    /// A loop on this backend, one short wait ([`TICK`]) per iteration.
    pub fn lp(&self) -> Loop {
        Loop::new().timeout(TICK).backend(self.backend)
    }

    /// asyncore's `loop_waiting_for_flag`: iterates until `done`, failing
    /// after [`PATIENCE`] or if the map empties first.
    #[track_caller]
    pub fn run_until(&self, map: &mut Map, mut done: impl FnMut(&mut Map) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(map) {
            assert!(
                !map.is_empty(),
                "{self}: the map emptied before the condition held"
            );
            assert!(
                Instant::now() < deadline,
                "{self}: condition not reached within {PATIENCE:?}"
            );
            self.lp().count(1).run(map).unwrap();
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for p in self.paths.borrow().iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}
