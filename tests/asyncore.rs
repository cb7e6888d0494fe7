//! The behaviours CPython's `test/test_asyncore.py` checks, ported (not
//! copied) to selectloop: every test body that involves sockets runs on
//! {select, poll, epoll} × {IPv4, IPv6, Unix} (`every_backend_and_family!`
//! of `tests/common`), as `TestAPI_Use{IPv4,IPv6,Unix}{Select,Poll}` did;
//! the others run on every backend (`every_backend!`).
//!
//! Test names read `<backend>_<family>::<behaviour>`, e.g.
//! `poll_ipv6::handle_close_after_conn_broken`.

// Every helper is shared (tests/common): the backend × family machinery
// (`Env`, `every_backend_and_family!`), the recording handler (`Recorder`,
// asyncore's BaseTestHandler with hooks), the timeouts and the log capture.
#[macro_use]
mod common;

use common::logs::{self, assert_logged, my_records};
use common::{
    assert_no_errors, fd_is_open, has, hook, keep_accepted, new_log, on_accepted, Env, Fam,
    Recorder, PATIENCE, TICK,
};
use selectloop::{
    Context, Dispatcher, DispatcherWithSend, Domain, FileWrapper, Handler, Loop, Map, SockAddr,
    Socket, Stop, Type,
};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// BaseTestAPI, on every backend × family
// ---------------------------------------------------------------------------

every_backend_and_family!(
    handle_connect,
    handle_accept,
    handle_accepted,
    handle_read,
    handle_write,
    handle_close,
    handle_close_after_conn_broken,
    handle_close_on_half_close,
    handle_expt,
    handle_error,
    connect_refused,
    error_routing,
    read_and_write_in_one_pass,
    exit_now_stops_the_loop,
    connection_attributes,
    create_socket,
    bind,
    set_reuse_addr,
    quick_connect,
    datagram_sendto_recvfrom,
    dispatcher_with_send_sends_everything,
    dispatcher_with_send_queues_while_connecting,
    repr,
    unhandled_events_log_warnings,
    unhandled_close_logs_a_warning_and_closes,
    close_all,
);

fn handle_connect(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    map.add(server, Recorder::quiet());
    let log = new_log();
    map.add(env.client(&addr), Recorder::new(&log).writable(false));
    env.run_until(&mut map, |_| has(&log, "connect"));
    assert_eq!(log.borrow()[0], "connect", "{env}: connect comes first");
    assert_no_errors(&log, &env);
}

fn handle_accept(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let log = new_log();
    map.add(server, Recorder::new(&log));
    map.add(env.client(&addr), Recorder::quiet().writable(false));
    env.run_until(&mut map, |_| has(&log, "accept"));
    assert_no_errors(&log, &env);
}

fn handle_accepted(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let log = new_log();
    let client = env.client(&addr);
    let client_local = client.socket().unwrap().local_addr().unwrap();
    let mut p = Recorder::new(&log);
    let seen = log.clone();
    let is_inet = env.is_inet();
    p.on_accepted = on_accepted(move |_ch, sock, peer, _cx| {
        if is_inet {
            // The peer address handed over is the client's own address.
            assert_eq!(peer.as_socket(), client_local.as_socket());
        }
        assert!(sock.peer_addr().is_ok());
        seen.borrow_mut().push("accepted-checked".into());
        Ok(())
    });
    map.add(server, p);
    map.add(client, Recorder::quiet().writable(false));
    env.run_until(&mut map, |_| has(&log, "accepted-checked"));
    assert_eq!(&log.borrow()[..2], ["accept", "accepted"], "{env}");
    assert_no_errors(&log, &env);
}

fn handle_read(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let mut sp = Recorder::quiet();
    sp.on_accepted = on_accepted(|_ch, sock, _addr, cx| {
        let mut d = Dispatcher::from_socket(sock)?;
        assert_eq!(d.send(&[b'x'; 1024])?, 1024);
        cx.add(d, Recorder::quiet().writable(false));
        Ok(())
    });
    map.add(server, sp);
    let log = new_log();
    let got = Rc::new(RefCell::new(0usize));
    let mut cp = Recorder::new(&log).writable(false);
    let g = got.clone();
    cp.on_read = hook(move |ch, _cx| {
        *g.borrow_mut() += ch.recv(&mut [0u8; 4096])?;
        Ok(())
    });
    map.add(env.client(&addr), cp);
    env.run_until(&mut map, |_| *got.borrow() == 1024);
    assert!(has(&log, "read"));
    assert_no_errors(&log, &env);
}

fn handle_write(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    map.add(server, Recorder::quiet());
    let log = new_log();
    map.add(env.client(&addr), Recorder::new(&log));
    env.run_until(&mut map, |_| has(&log, "write"));
    assert_no_errors(&log, &env);
}

fn handle_close(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    // The server closes every connection at once (drops the socket).
    map.add(server, Recorder::quiet());
    let log = new_log();
    let mut cp = Recorder::new(&log).writable(false);
    cp.on_read = hook(|ch, _cx| {
        // handle_close follows a recv of 0 bytes.
        ch.recv(&mut [0u8; 1024])?;
        Ok(())
    });
    let client = map.add(env.client(&addr), cp);
    env.run_until(&mut map, |_| has(&log, "close"));
    assert!(
        !map.contains(client),
        "{env}: a closed channel leaves the map"
    );
    assert_no_errors(&log, &env);
}

fn handle_close_after_conn_broken(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let mut sp = Recorder::quiet();
    sp.on_accepted = on_accepted(|_ch, sock, _addr, cx| {
        let mut h = Recorder::quiet().writable(false);
        h.on_read = hook(|ch, _cx| {
            ch.recv(&mut [0u8; 128])?;
            ch.close();
            Ok(())
        });
        cx.add(Dispatcher::from_socket(sock)?, h);
        Ok(())
    });
    map.add(server, sp);
    let log = new_log();
    let mut cp = Recorder::new(&log).readable(false);
    cp.on_write = hook(|ch, _cx| {
        ch.send(&[0u8; 128])?;
        Ok(())
    });
    let client = map.add(env.client(&addr), cp);
    env.run_until(&mut map, |_| has(&log, "close") || has(&log, "expt"));
    assert_no_errors(&log, &env);
    env.run_until(&mut map, |m| !m.contains(client));
}

fn handle_close_on_half_close(env: Env) {
    // A peer that shuts down its write side is a read of 0 bytes, then
    // handle_close, on both backends.
    let (a, b) = env.socket_pair();
    let mut map = Map::new();
    let log = new_log();
    let mut p = Recorder::new(&log).writable(false);
    p.on_read = hook(|ch, _cx| {
        ch.recv(&mut [0u8; 64])?;
        Ok(())
    });
    p.on_close = hook(|ch, _cx| {
        // The write side is still open: say goodbye, then close.
        assert_eq!(ch.send(b"bye")?, 3);
        ch.close();
        Ok(())
    });
    let t = map.add(Dispatcher::from_socket(a).unwrap(), p);
    b.shutdown(std::net::Shutdown::Write).unwrap();
    env.run_until(&mut map, |m| !m.contains(t));
    assert_eq!(*log.borrow(), ["read", "close"], "{env}");
    let mut buf = Vec::new();
    (&b).read_to_end(&mut buf).unwrap();
    assert_eq!(buf, b"bye");
}

fn handle_expt(env: Env) {
    if !env.is_inet() {
        eprintln!("skipped: out-of-band data is TCP only ({env})");
        return;
    }
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let mut sp = Recorder::quiet();
    sp.on_accepted = on_accepted(|_ch, sock, _addr, cx| {
        assert_eq!(sock.send_out_of_band(&[244])?, 1);
        cx.add(
            Dispatcher::from_socket(sock)?,
            Recorder::quiet().writable(false).readable(false),
        );
        Ok(())
    });
    map.add(server, sp);
    let log = new_log();
    let oob = Rc::new(RefCell::new(Vec::new()));
    let mut cp = Recorder::new(&log).writable(false);
    let o = oob.clone();
    cp.on_expt = hook(move |ch, _cx| {
        let mut buf = [0u8; 8];
        let n = ch.recv_oob(&mut buf)?;
        o.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    });
    map.add(env.client(&addr), cp);
    env.run_until(&mut map, |_| !oob.borrow().is_empty());
    assert_eq!(*oob.borrow(), [244u8], "{env}");
    assert!(has(&log, "expt"));
    assert_no_errors(&log, &env);
}

fn handle_error(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    map.add(server, Recorder::quiet());
    let log = new_log();
    let mut cp = Recorder::new(&log).readable(false);
    cp.on_write = hook(|_ch, _cx| Err(io::Error::other("division by zero")));
    let client = map.add(env.client(&addr), cp);
    env.run_until(&mut map, |_| has(&log, "error"));
    assert!(
        log.borrow().contains(&"error:division by zero".to_string()),
        "{env}: {:?}",
        log.borrow()
    );
    // The error handler closed it: no more events.
    env.lp().count(2).run(&mut map).unwrap();
    assert!(!map.contains(client));
    assert!(!has(&log, "close"), "{env}: an error is not a close");
}

/// A refused non-blocking connect: no handle_connect; the error (SO_ERROR)
/// goes to handle_error, as asyncore's handle_connect_event raises it. A
/// refusal the kernel reports at once (Unix sockets) is `connect`'s error.
fn connect_refused(env: Env) {
    // Bound, not listening: connections to it are refused.
    let closed = Socket::new(env.domain(), Type::STREAM, None).unwrap();
    closed.bind(&env.bind_addr()).unwrap();
    let addr = closed.local_addr().unwrap();
    let mut d = env.stream();
    match d.connect(addr) {
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{env}: {e}");
            assert!(!d.connecting() && !d.connected(), "{env}");
        }
        Ok(()) => {
            let mut map = Map::new();
            let log = new_log();
            let t = map.add(d, Recorder::new(&log).writable(false));
            env.run_until(&mut map, |m| !m.contains(t));
            let got = log.borrow().clone();
            assert!(!got.iter().any(|e| e == "connect"), "{env}: {got:?}");
            let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED).to_string();
            assert_eq!(
                got.first(),
                Some(&format!("error:{refused}")),
                "{env}: {got:?}"
            );
        }
    }
}

/// readwrite's error rule: a handler error meaning "peer gone" is a close,
/// WouldBlock is ignored, anything else goes to handle_error; for the read,
/// write and expt paths.
fn error_routing(env: Env) {
    type Case = (&'static str, fn() -> io::Error, &'static str);
    let cases: [Case; 3] = [
        (
            "reset",
            || io::Error::from_raw_os_error(libc::ECONNRESET),
            "close",
        ),
        ("other", || io::Error::other("boom"), "error:boom"),
        (
            "wouldblock",
            || io::Error::from(io::ErrorKind::WouldBlock),
            "",
        ),
    ];
    for (path, readable, writable) in [("read", true, false), ("write", false, true)] {
        for (case, make, want) in cases {
            let (a, b) = env.socket_pair();
            (&b).write_all(b"data").unwrap();
            let mut map = Map::new();
            let log = new_log();
            let mut p = Recorder::new(&log).readable(readable).writable(writable);
            let failing = hook(move |_ch, _cx| Err(make()));
            if path == "read" {
                p.on_read = failing;
            } else {
                p.on_write = failing;
            }
            let t = map.add(Dispatcher::from_socket(a).unwrap(), p);
            env.lp().count(1).run(&mut map).unwrap();
            let got = log.borrow().clone();
            assert_eq!(got[0], path, "{env} {path}/{case}: {got:?}");
            let rest: Vec<&str> = got[1..].iter().map(|s| s.as_str()).collect();
            let expected: Vec<&str> = if want.is_empty() { vec![] } else { vec![want] };
            assert_eq!(rest, expected, "{env} {path}/{case}");
            assert_eq!(map.contains(t), want.is_empty(), "{env} {path}/{case}");
            drop(b);
        }
    }
    // The expt path (TCP only): SO_ERROR clear, the hook fails.
    if env.is_inet() {
        for (case, make, want) in cases {
            let (a, b) = env.socket_pair();
            b.send_out_of_band(&[1]).unwrap();
            let mut map = Map::new();
            let log = new_log();
            let mut p = Recorder::new(&log).writable(false);
            p.on_expt = hook(move |_ch, _cx| Err(make()));
            map.add(Dispatcher::from_socket(a).unwrap(), p);
            env.run_until(&mut map, |_| has(&log, "expt"));
            let got = log.borrow().clone();
            let after: Vec<&str> = got
                .iter()
                .skip_while(|e| *e != "expt")
                .skip(1)
                .map(|s| s.as_str())
                .collect();
            if want.is_empty() {
                assert!(
                    after.iter().all(|e| *e == "read"),
                    "{env} expt/{case}: {got:?}"
                );
            } else {
                assert_eq!(
                    after.first().copied(),
                    Some(want),
                    "{env} expt/{case}: {got:?}"
                );
            }
            drop(b);
        }
    }
}

/// A channel readable and writable in one pass gets both events, read
/// first (asyncore's readwrite order: POLLIN, POLLOUT, POLLPRI).
fn read_and_write_in_one_pass(env: Env) {
    let (a, b) = env.socket_pair();
    (&b).write_all(b"x").unwrap();
    let mut map = Map::new();
    let log = new_log();
    map.add(Dispatcher::from_socket(a).unwrap(), Recorder::new(&log));
    env.lp().count(1).run(&mut map).unwrap();
    assert_eq!(*log.borrow(), ["read", "write"], "{env}");
}

/// asyncore's ExitNow: a handler ends the loop; the rest of the iteration's
/// events are not delivered and the map keeps its channels.
fn exit_now_stops_the_loop(env: Env) {
    let (a, _pa) = env.socket_pair();
    let (b, _pb) = env.socket_pair();
    let mut map = Map::new();
    let first = new_log();
    let second = new_log();
    let mut p = Recorder::new(&first).readable(false);
    p.on_write = hook(|_ch, cx| {
        cx.exit();
        Ok(())
    });
    map.add(Dispatcher::from_socket(a).unwrap(), p);
    map.add(
        Dispatcher::from_socket(b).unwrap(),
        Recorder::new(&second).readable(false),
    );
    let stop = env.lp().count(100).run(&mut map).unwrap();
    assert_eq!(stop, Stop::Exit, "{env}");
    assert_eq!(*first.borrow(), ["write"], "{env}");
    assert!(second.borrow().is_empty(), "{env}: {:?}", second.borrow());
    assert_eq!(map.len(), 2);
    // count: a busy loop stops after exactly `count` iterations.
    map.close_all();
    let (c, _pc) = env.socket_pair();
    let log = new_log();
    map.add(
        Dispatcher::from_socket(c).unwrap(),
        Recorder::new(&log).readable(false),
    );
    assert_eq!(env.lp().count(3).run(&mut map).unwrap(), Stop::Count);
    assert_eq!(log.borrow().len(), 3, "{env}: {:?}", log.borrow());
}

fn connection_attributes(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let client = env.client(&addr);
    // We start disconnected.
    assert!(!server.connected() && server.accepting() && !server.connecting());
    assert!(!client.accepting());
    assert!(client.connecting() || client.connected());
    assert_eq!(
        client.addr(),
        Some(&addr),
        "{env}: a client's addr is the server's"
    );
    let mut sp = Recorder::quiet();
    sp.on_accepted = keep_accepted();
    let st = map.add(server, sp);
    let log = new_log();
    let ct = map.add(client, Recorder::new(&log).writable(false));
    env.run_until(&mut map, |_| has(&log, "connect"));
    env.lp().count(3).run(&mut map).unwrap();
    {
        let s = map.channel_mut(st).unwrap();
        assert!(!s.connected() && s.accepting(), "{env}");
        let c = map.channel_mut(ct).unwrap();
        assert!(c.connected() && !c.accepting() && !c.connecting(), "{env}");
        // Disconnect the client.
        c.close();
        assert!(!c.connected() && !c.accepting() && !c.connecting(), "{env}");
        let s = map.channel_mut(st).unwrap();
        assert!(!s.connected() && s.accepting(), "{env}");
        // Stop serving.
        s.close();
        assert!(!s.connected() && !s.accepting(), "{env}");
    }
    // Closed channels leave the map at the next iteration; the accepted
    // one stays until it sees the client's close.
    env.run_until(&mut map, |m| m.is_empty());
    assert!(!map.contains(st) && !map.contains(ct));
}

fn create_socket(env: Env) {
    for ty in [Type::STREAM, Type::DGRAM] {
        let d = Dispatcher::create_socket(env.domain(), ty).unwrap();
        let s = d.socket().unwrap();
        assert_eq!(s.r#type().unwrap(), ty, "{env}");
        assert_eq!(s.domain().unwrap(), env.domain(), "{env}");
        assert!(s.nonblocking().unwrap(), "{env}: non-blocking (timeout 0)");
        let flags = nix::fcntl::fcntl(s, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert!(flags & libc::FD_CLOEXEC != 0, "{env}: not inheritable");
        assert!(!d.connected() && !d.accepting() && !d.connecting());
        assert!(d.addr().is_none());
    }
}

fn bind(env: Env) {
    let mut s1 = env.stream();
    s1.bind(env.bind_addr()).unwrap();
    s1.listen(5).unwrap();
    let bound = s1.addr().unwrap().clone();
    if env.is_inet() {
        assert_ne!(
            bound.as_socket().unwrap().port(),
            0,
            "{env}: addr has the real port"
        );
    }
    let mut s2 = env.stream();
    let err = s2.bind(bound).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{env}: {err}");
}

fn set_reuse_addr(env: Env) {
    let plain = Socket::new(env.domain(), Type::STREAM, None).unwrap();
    if plain.set_reuse_address(true).is_err() {
        eprintln!("skipped: SO_REUSEADDR not supported for {env}");
        return;
    }
    let d =
        Dispatcher::from_socket(Socket::new(env.domain(), Type::STREAM, None).unwrap()).unwrap();
    assert!(!d.socket().unwrap().reuse_address().unwrap(), "{env}");
    let d = env.stream();
    assert!(!d.socket().unwrap().reuse_address().unwrap(), "{env}");
    d.set_reuse_addr().unwrap();
    assert!(d.socket().unwrap().reuse_address().unwrap(), "{env}");
}

/// bpo-10340: a client that connects and resets at once must not break the
/// loop (ENOTCONN / ECONNRESET / ECONNABORTED on the accepted socket).
fn quick_connect(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let log = new_log();
    let mut sp = Recorder::new(&log);
    sp.on_accepted = keep_accepted();
    let st = map.add(server, sp);
    let domain = env.domain();
    let peer = thread::spawn(move || {
        for _ in 0..5 {
            let s = Socket::new(domain, Type::STREAM, None).unwrap();
            s.set_linger(Some(Duration::ZERO)).unwrap();
            let _ = s.connect_timeout(&addr, Duration::from_secs(2));
            drop(s); // RST for TCP
        }
    });
    let deadline = Instant::now() + PATIENCE;
    while !peer.is_finished() && Instant::now() < deadline {
        env.lp()
            .count(1)
            .run(&mut map)
            .expect("the loop never fails");
    }
    peer.join().unwrap();
    env.lp()
        .count(20)
        .run(&mut map)
        .expect("the loop never fails");
    assert!(map.contains(st), "{env}: the listener survives");
    assert!(map.channel_mut(st).unwrap().accepting());
    assert_no_errors(&log, &env);
}

/// Datagram sockets: sendto in handle_write, recvfrom (with the sender's
/// address) in handle_read, a reply to that address.
fn datagram_sendto_recvfrom(env: Env) {
    let mut a = Dispatcher::create_socket(env.domain(), Type::DGRAM).unwrap();
    a.bind(env.bind_addr()).unwrap();
    let mut b = Dispatcher::create_socket(env.domain(), Type::DGRAM).unwrap();
    b.bind(env.bind_addr()).unwrap();
    let a_addr = a.addr().unwrap().clone();
    let b_addr = b.addr().unwrap().clone();
    let mut map = Map::new();
    let log = new_log();
    let sent = Rc::new(RefCell::new(false));
    let mut pa = Recorder::new(&log);
    let s = sent.clone();
    pa.on_write = hook(move |ch, _cx| {
        if !*s.borrow() {
            assert_eq!(ch.sendto(b"ping", &b_addr)?, 4);
            *s.borrow_mut() = true;
        }
        Ok(())
    });
    let l = log.clone();
    pa.on_read = hook(move |ch, _cx| {
        let mut buf = [0u8; 16];
        let (n, _from) = ch.recvfrom(&mut buf)?;
        l.borrow_mut()
            .push(format!("got:{}", String::from_utf8_lossy(&buf[..n])));
        Ok(())
    });
    pa.writable = None;
    map.add(a, pa);
    let mut pb = Recorder::quiet().writable(false);
    let expect_from = a_addr.clone();
    let is_inet = env.is_inet();
    pb.on_read = hook(move |ch, _cx| {
        let mut buf = [0u8; 16];
        let (n, from) = ch.recvfrom(&mut buf)?;
        assert_eq!(&buf[..n], b"ping");
        if is_inet {
            assert_eq!(from.as_socket(), expect_from.as_socket());
        } else {
            assert_eq!(from.as_pathname(), expect_from.as_pathname());
        }
        ch.sendto(b"pong", &from)?;
        Ok(())
    });
    map.add(b, pb);
    env.run_until(&mut map, |_| has(&log, "got"));
    assert!(
        log.borrow().contains(&"got:pong".to_string()),
        "{env}: {:?}",
        log.borrow()
    );
    assert_no_errors(&log, &env);
}

/// A peer thread that reads everything until EOF.
fn capture_server(env: &Env) -> (SockAddr, thread::JoinHandle<Vec<u8>>) {
    let (l, addr) = env.blocking_listener();
    let t = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut buf = Vec::new();
        (&s).read_to_end(&mut buf).unwrap();
        buf
    });
    (addr, t)
}

struct NoRead;
impl Handler<DispatcherWithSend> for NoRead {
    fn readable(&mut self, _ch: &DispatcherWithSend) -> bool {
        false
    }
    fn handle_connect(
        &mut self,
        _ch: &mut DispatcherWithSend,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        Ok(())
    }
}

fn dispatcher_with_send_sends_everything(env: Env) {
    let (addr, server) = capture_server(&env);
    let mut d = DispatcherWithSend::new(env.stream()).with_output_limit(8 << 20);
    d.connect(addr).unwrap();
    let mut map = Map::new();
    let t = map.add(d, NoRead);
    // Wait for the connection, then send more than a slice at once.
    env.run_until(&mut map, |m| m.channel_mut(t).unwrap().connected());
    let data: Vec<u8> = (0..3 * selectloop::SEND_SLICE + 17)
        .map(|i| (i % 251) as u8)
        .collect();
    {
        let d = map.channel_mut(t).unwrap();
        assert_eq!(d.send(&data).unwrap(), data.len());
        assert_eq!(d.send(&data).unwrap(), data.len());
        assert_eq!(d.send(b"\n").unwrap(), 1);
        d.close_when_done();
    }
    env.run_until(&mut map, |m| m.is_empty());
    let got = server.join().unwrap();
    let mut want = data.clone();
    want.extend_from_slice(&data);
    want.push(b'\n');
    assert_eq!(got.len(), want.len(), "{env}");
    assert!(got == want, "{env}: the bytes differ");
}

fn dispatcher_with_send_queues_while_connecting(env: Env) {
    let (addr, server) = capture_server(&env);
    let mut d = DispatcherWithSend::new(env.stream());
    d.connect(addr).unwrap();
    let data = b"Suppose there isn't a 16-ton weight?";
    d.send(data).unwrap();
    d.send(data).unwrap();
    d.close_when_done();
    let mut map = Map::new();
    map.add(d, NoRead);
    env.run_until(&mut map, |m| m.is_empty());
    assert_eq!(
        server.join().unwrap(),
        [&data[..], &data[..]].concat(),
        "{env}"
    );
}

fn show(addr: &SockAddr) -> String {
    match addr.as_socket() {
        Some(a) => a.to_string(),
        None => addr.as_pathname().unwrap().display().to_string(),
    }
}

fn repr(env: Env) {
    let (server, addr) = env.listener();
    let fd = server.fileno().unwrap();
    let want = format!("<Dispatcher listening {} fd={fd}>", show(&addr));
    assert_eq!(format!("{server:?}"), want);
    if env.fam == Fam::V6 {
        assert!(want.contains("[::1]:"), "{want}");
    }
    let mut map = Map::new();
    map.add(server, Recorder::quiet());
    let log = new_log();
    let ct = map.add(env.client(&addr), Recorder::new(&log).writable(false));
    env.run_until(&mut map, |_| has(&log, "connect"));
    let c = map.channel_mut(ct).unwrap();
    let cfd = c.fileno().unwrap();
    assert_eq!(
        format!("{c:?}"),
        format!("<Dispatcher connected {} fd={cfd}>", show(&addr))
    );
    c.close();
    assert_eq!(
        format!("{c:?}"),
        format!("<Dispatcher {} closed>", show(&addr))
    );
    // A dispatcher_with_send shows its queue.
    let d = DispatcherWithSend::new(env.stream());
    assert!(format!("{d:?}").ends_with("(0 bytes queued)"), "{d:?}");
}

/// asyncore's test_unhandled: the default handlers log a warning naming
/// the event (captured through the `log` facade).
fn unhandled_events_log_warnings(env: Env) {
    logs::install(log::LevelFilter::Warn);
    struct Defaults;
    impl Handler for Defaults {}
    // read and write on a connected pair with data waiting.
    let (a, b) = env.socket_pair();
    (&b).write_all(b"x").unwrap();
    let mut map = Map::new();
    map.add(Dispatcher::from_socket(a).unwrap(), Defaults);
    env.lp().count(1).run(&mut map).unwrap();
    assert_logged(log::Level::Warn, "unhandled read event", &env);
    assert_logged(log::Level::Warn, "unhandled write event", &env);
    map.close_all();
    // connect and accepted.
    let (server, addr) = env.listener();
    map.add(server, Defaults);
    let client = map.add(env.client(&addr), Defaults);
    let deadline = Instant::now() + PATIENCE;
    while !my_records(log::Level::Warn)
        .iter()
        .any(|m| m.contains("unhandled accepted event"))
    {
        assert!(Instant::now() < deadline, "{env}: no accepted warning");
        env.lp().count(1).run(&mut map).unwrap();
    }
    assert_logged(log::Level::Warn, "unhandled connect event", &env);
    assert!(map.contains(client));
    map.close_all();
    // expt (TCP only).
    if env.is_inet() {
        let (a, b) = env.socket_pair();
        b.send_out_of_band(&[7]).unwrap();
        map.add(Dispatcher::from_socket(a).unwrap(), Defaults);
        let deadline = Instant::now() + PATIENCE;
        while !my_records(log::Level::Warn)
            .iter()
            .any(|m| m.contains("unhandled incoming priority event"))
        {
            assert!(Instant::now() < deadline, "{env}: no priority warning");
            env.lp().count(1).run(&mut map).unwrap();
        }
        map.close_all();
    }
    // The default handle_error logs at error level and closes.
    struct Failing;
    impl Handler for Failing {
        fn handle_write(&mut self, _ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
            Err(io::Error::other("spam"))
        }
    }
    let (a, _b) = env.socket_pair();
    let t = map.add(Dispatcher::from_socket(a).unwrap(), Failing);
    env.lp().count(1).run(&mut map).unwrap();
    assert!(!map.contains(t), "{env}: the default handle_error closes");
    assert_logged(log::Level::Error, "uncaptured error: spam", &env);
    // The basics: a plain dispatcher is readable and writable by default.
    let d = env.stream();
    assert!(Handler::readable(&mut Defaults, &d));
    assert!(Handler::writable(&mut Defaults, &d));
}

fn unhandled_close_logs_a_warning_and_closes(env: Env) {
    logs::install(log::LevelFilter::Warn);
    struct RecvOnly;
    impl Handler for RecvOnly {
        fn writable(&mut self, _ch: &Dispatcher) -> bool {
            false
        }
        fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
            ch.recv(&mut [0u8; 64])?;
            Ok(())
        }
    }
    let (a, b) = env.socket_pair();
    drop(b);
    let mut map = Map::new();
    let t = map.add(Dispatcher::from_socket(a).unwrap(), RecvOnly);
    env.run_until(&mut map, |m| !m.contains(t));
    assert_logged(log::Level::Warn, "unhandled close event", &env);
}

fn close_all(env: Env) {
    let mut map = Map::new();
    let mut peers = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..10 {
        let (a, b) = env.socket_pair();
        tokens.push(map.add(Dispatcher::from_socket(a).unwrap(), Recorder::quiet()));
        peers.push(b);
    }
    let (server, _) = env.listener();
    tokens.push(map.add(server, Recorder::quiet()));
    assert_eq!(map.len(), 11);
    map.close_all();
    assert_eq!(map.len(), 0);
    assert!(map.is_empty());
    assert!(tokens.iter().all(|t| !map.contains(*t)));
    for b in peers {
        // Every socket was closed: the peer reads EOF.
        assert_eq!((&b).read(&mut [0u8; 8]).unwrap(), 0, "{env}");
    }
    assert_eq!(env.lp().run(&mut map).unwrap(), Stop::Empty);
}

// ---------------------------------------------------------------------------
// file_wrapper and file_dispatcher (FileWrapperTest), and dispatcher basics
// ---------------------------------------------------------------------------

const CONTENT: &[u8] = b"It's not dead, it's sleeping!";

fn temp_file(tag: &str) -> PathBuf {
    let path = common::temp_path(&format!("asyncore-{tag}"));
    std::fs::write(&path, CONTENT).unwrap();
    path
}

#[test]
fn file_wrapper_recv() {
    let path = temp_file("recv");
    let f = std::fs::File::open(&path).unwrap();
    let mut w = FileWrapper::new(&f).unwrap();
    let orig = f.as_raw_fd();
    drop(f);
    assert_ne!(w.fileno(), orig, "the wrapper owns a dup");
    let mut buf = [0u8; 13];
    assert_eq!(w.recv(&mut buf).unwrap(), 13);
    assert_eq!(&buf, b"It's not dead");
    let mut buf = [0u8; 6];
    assert_eq!(w.recv(&mut buf).unwrap(), 6);
    assert_eq!(&buf, b", it's");
    assert!(w.so_error().is_none(), "SO_ERROR of a file reads as 0");
    w.close();
    assert!(w.recv(&mut [0u8; 1]).is_err());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn file_wrapper_send() {
    let path = temp_file("send");
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let mut w = FileWrapper::new(&f).unwrap();
    drop(f);
    assert_eq!(w.send(b"Come again?").unwrap(), 11);
    assert_eq!(w.send(b"I want to buy some cheese.").unwrap(), 26);
    w.close();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        [CONTENT, b"Come again?", b"I want to buy some cheese."].concat()
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn file_wrapper_close_twice() {
    let path = temp_file("close");
    let f = std::fs::File::open(&path).unwrap();
    let mut w = FileWrapper::new(&f).unwrap();
    drop(f);
    w.close();
    assert_eq!(w.fileno(), -1);
    // Whatever gets the old number next must survive a second close.
    let g = std::fs::File::open(&path).unwrap();
    w.close();
    assert_eq!(w.fileno(), -1);
    assert!(fd_is_open(g.as_raw_fd()));
    assert!(w.is_closed());
    std::fs::remove_file(path).unwrap();
}

fn file_dispatcher(lp: Loop) {
    let path = temp_file("dispatcher");
    let f = std::fs::File::open(&path).unwrap();
    let d = Dispatcher::file_dispatcher(&f).unwrap();
    drop(f);
    assert!(d.connected(), "a file dispatcher starts connected");
    let data = Rc::new(RefCell::new(Vec::new()));
    let mut p = Recorder::quiet().writable(false);
    let g = data.clone();
    p.on_read = hook(move |ch, _cx| {
        let mut buf = [0u8; 29];
        let n = ch.recv(&mut buf)?;
        g.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    });
    let mut map = Map::new();
    map.add(d, p);
    lp.timeout(TICK).count(2).run(&mut map).unwrap();
    assert_eq!(*data.borrow(), CONTENT);
    std::fs::remove_file(path).unwrap();
}

/// A file dispatcher on a pipe: read events for what is written, then a
/// close when the writer goes.
fn file_dispatcher_on_a_pipe(lp: Loop) {
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut map = Map::new();
    let log = new_log();
    let data = Rc::new(RefCell::new(Vec::new()));
    let mut p = Recorder::new(&log).writable(false);
    let g = data.clone();
    p.on_read = hook(move |ch, _cx| {
        let mut buf = [0u8; 64];
        let n = ch.recv(&mut buf)?;
        g.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    });
    let t = map.add(Dispatcher::file_dispatcher(&r).unwrap(), p);
    drop(r);
    let mut w = std::fs::File::from(w);
    w.write_all(b"hello").unwrap();
    let lp = lp.timeout(TICK);
    let deadline = Instant::now() + PATIENCE;
    while data.borrow().len() < 5 {
        assert!(Instant::now() < deadline);
        lp.clone().count(1).run(&mut map).unwrap();
    }
    drop(w);
    while map.contains(t) {
        assert!(Instant::now() < deadline);
        lp.clone().count(1).run(&mut map).unwrap();
    }
    assert_eq!(*data.borrow(), b"hello");
    assert!(has(&log, "close"));
}

/// dispatcher basics (test_basic): defaults of the predicates.
fn dispatcher_basics(_lp: Loop) {
    struct Defaults;
    impl Handler for Defaults {}
    impl Handler<DispatcherWithSend> for Defaults {}
    let d = Dispatcher::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    assert!(Handler::<Dispatcher>::readable(&mut Defaults, &d));
    assert!(Handler::<Dispatcher>::writable(&mut Defaults, &d));
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let ds = DispatcherWithSend::new(Dispatcher::from_socket(a).unwrap());
    assert!(ds.connected());
    assert!(Handler::<DispatcherWithSend>::readable(&mut Defaults, &ds));
    assert!(
        !Handler::<DispatcherWithSend>::writable(&mut Defaults, &ds),
        "dispatcher_with_send is writable only with queued output"
    );
}

/// An empty map: the loop returns at once; an idle map with nothing to wait
/// for sleeps the timeout rather than spinning.
fn idle_loop_sleeps(lp: Loop) {
    let mut map = Map::new();
    assert_eq!(lp.clone().run(&mut map).unwrap(), Stop::Empty);
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    map.add(
        Dispatcher::from_socket(a).unwrap(),
        Recorder::quiet().readable(false).writable(false),
    );
    let start = Instant::now();
    let stop = lp
        .timeout(Duration::from_millis(20))
        .count(3)
        .run(&mut map)
        .unwrap();
    assert_eq!(stop, Stop::Count);
    // Timeouts are minimums: three iterations waited at least 3 × 20 ms.
    assert!(
        start.elapsed() >= Duration::from_millis(60),
        "{:?}",
        start.elapsed()
    );
}

every_backend!(
    file_dispatcher,
    file_dispatcher_on_a_pipe,
    dispatcher_basics,
    idle_loop_sleeps
);
