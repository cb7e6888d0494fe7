//! The shared test helpers checked on their own: every test file leans on
//! [`common::Recorder`]'s defaults (the table in `tests/common/recorder.rs`)
//! and on [`common::Env`], so a change to either that moved what other
//! tests assert fails here first, by name. Every body runs on every backend
//! × family, like the tests that use them.

#[macro_use]
mod common;

use common::{assert_no_errors, events, has, hook, new_log, Env, Fam, Recorder, PATIENCE};
use selectloop::{Dispatcher, Map, Type};
use std::io::{self, Read, Write};
use std::time::Duration;

every_backend_and_family!(
    env_makes_sockets_of_its_family,
    recorder_read_without_a_hook_leaves_the_data,
    recorder_discard_reads_consumes_and_sees_the_close,
    recorder_close_without_a_hook_closes,
    recorder_close_hook_replaces_the_close,
    recorder_logs_connect_first,
    recorder_accepted_without_a_hook_drops_the_socket,
    recorder_error_runs_its_hook_then_closes_even_a_listener,
    recorder_logs_timeouts,
);

fn env_makes_sockets_of_its_family(env: Env) {
    let (a, b) = env.socket_pair();
    for s in [&a, &b] {
        assert_eq!(s.domain().unwrap(), env.domain(), "{env}");
        assert_eq!(s.read_timeout().unwrap(), Some(PATIENCE), "{env}");
    }
    assert_eq!(env.is_inet(), env.fam != Fam::Unix);
    let (listener, addr) = env.listener();
    assert!(listener.accepting(), "{env}");
    assert_eq!(listener.addr(), Some(&addr), "{env}");
    if env.fam == Fam::Unix {
        let path = addr.as_pathname().unwrap().to_path_buf();
        assert!(path.exists(), "{env}: {}", path.display());
        drop(listener);
        drop(env);
        assert!(!path.exists(), "the Env removes its socket paths");
    }
}

fn recorder_read_without_a_hook_leaves_the_data(env: Env) {
    let (a, b) = env.socket_pair();
    (&b).write_all(b"x").unwrap();
    let mut map = Map::new();
    let log = new_log();
    map.add(
        Dispatcher::from_socket(a).unwrap(),
        Recorder::new(&log).writable(false),
    );
    env.lp().count(2).run(&mut map).unwrap();
    assert_eq!(
        events(&log),
        ["read", "read"],
        "{env}: the byte is still there"
    );
}

fn recorder_discard_reads_consumes_and_sees_the_close(env: Env) {
    let (a, b) = env.socket_pair();
    (&b).write_all(b"x").unwrap();
    let mut map = Map::new();
    let log = new_log();
    let t = map.add(
        Dispatcher::from_socket(a).unwrap(),
        Recorder::new(&log).writable(false).discard_reads(),
    );
    env.lp().count(2).run(&mut map).unwrap();
    assert_eq!(events(&log), ["read"], "{env}: read once, then nothing");
    drop(b);
    env.run_until(&mut map, |m| !m.contains(t));
    assert_eq!(events(&log), ["read", "read", "close"], "{env}");
}

fn recorder_close_without_a_hook_closes(env: Env) {
    let (a, b) = env.socket_pair();
    let mut map = Map::new();
    let log = new_log();
    let t = map.add(
        Dispatcher::from_socket(a).unwrap(),
        Recorder::new(&log).writable(false).discard_reads(),
    );
    drop(b);
    env.run_until(&mut map, |m| !m.contains(t));
    assert!(has(&log, "close"), "{env}: {:?}", events(&log));
    assert_no_errors(&log, &env);
}

fn recorder_close_hook_replaces_the_close(env: Env) {
    let (a, b) = env.socket_pair();
    let mut map = Map::new();
    let log = new_log();
    let t = map.add(
        Dispatcher::from_socket(a).unwrap(),
        // Stops reading once the peer is gone, so the close comes once.
        Recorder::new(&log)
            .writable(false)
            .discard_reads()
            .on_close(|_ch, _cx| Ok(())),
    );
    drop(b);
    env.run_until(&mut map, |_| has(&log, "close"));
    assert!(map.contains(t), "{env}: the hook did not close it");
    map.close_all();
}

fn recorder_logs_connect_first(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    map.add(server, Recorder::quiet());
    let log = new_log();
    map.add(env.client(&addr), Recorder::new(&log).writable(false));
    env.run_until(&mut map, |_| has(&log, "connect"));
    assert_eq!(events(&log)[0], "connect", "{env}");
}

fn recorder_accepted_without_a_hook_drops_the_socket(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let log = new_log();
    map.add(server, Recorder::new(&log));
    let client = selectloop::Socket::new(env.domain(), Type::STREAM, None).unwrap();
    client.connect(&addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    env.run_until(&mut map, |_| has(&log, "accepted"));
    assert_eq!(&events(&log)[..2], ["accept", "accepted"], "{env}");
    assert_eq!(
        (&client).read(&mut [0u8; 8]).unwrap(),
        0,
        "{env}: the accepted socket was closed"
    );
}

fn recorder_error_runs_its_hook_then_closes_even_a_listener(env: Env) {
    let mut map = Map::new();
    let (server, addr) = env.listener();
    let log = new_log();
    let seen = new_log();
    let s = seen.clone();
    let lt = map.add(
        server,
        Recorder::new(&log)
            .on_accepted(|_ch, _sock, _addr, _cx| Err(io::Error::other("refused")))
            .on_error(move |ch, err| s.borrow_mut().push(format!("{}:{err}", ch.accepting()))),
    );
    let _client = env.client(&addr);
    env.run_until(&mut map, |m| !m.contains(lt));
    assert_eq!(
        events(&log),
        ["accept", "accepted", "error:refused"],
        "{env}"
    );
    assert_eq!(events(&seen), ["true:refused"], "{env}: hook before close");
}

fn recorder_logs_timeouts(env: Env) {
    let (a, _b) = env.socket_pair();
    let mut d = Dispatcher::from_socket(a).unwrap();
    d.set_timeout(Duration::from_millis(5));
    let mut map = Map::new();
    let log = new_log();
    let mut r = Recorder::new(&log).readable(false).writable(false);
    r.on_timeout = hook(|ch, _cx| {
        ch.close();
        Ok(())
    });
    let t = map.add(d, r);
    env.run_until(&mut map, |m| !m.contains(t));
    assert_eq!(events(&log), ["timeout"], "{env}");
}
