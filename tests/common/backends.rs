//! One test body, every backend: the loop-level twin of [`super::BACKENDS`]
//! (the examples' flags). Adding a backend is one line in `every_backend!`
//! and three in `every_backend_and_family!` (one per family). A body that
//! must run its backends one after the other (fixed fd numbers, a lowered
//! fd limit) loops over [`super::LOOP_BACKENDS`] instead.

/// For each body `fn name(lp: Loop)`, generates one `#[test]` per backend,
/// each handing the body a [`selectloop::Loop`] already set to that backend
/// (the body adds its own `.timeout(..)` / `.count(..)`).
#[allow(unused_macros)]
macro_rules! every_backend {
    ($($name:ident),* $(,)?) => {
        mod select {
            $( #[test] fn $name() { super::$name(selectloop::Loop::new().use_poll(false)) } )*
        }
        mod poll {
            $( #[test] fn $name() { super::$name(selectloop::Loop::new().use_poll(true)) } )*
        }
        mod epoll {
            $( #[test] fn $name() { super::$name(selectloop::Loop::new().backend(selectloop::Backend::Epoll)) } )*
        }
    };
}

/// For each body `fn name(env: Env)` ([`super::Env`]), generates one
/// `#[test]` per backend × address family, in modules named
/// `<backend>_<family>` (`select_ipv4`, ..., `epoll_unix`), as CPython's
/// `TestAPI_Use{IPv4,IPv6,Unix}{Select,Poll}` did: the test
/// `poll_ipv6::handle_read` runs `handle_read` on poll over IPv6. A family
/// the machine lacks (no `::1`) is skipped with a note on stderr. Adding a
/// backend is three lines here; adding a family, one line per backend.
#[allow(unused_macros)]
macro_rules! every_backend_and_family {
    ($($name:ident),* $(,)?) => {
        every_backend_and_family!(@mod select_ipv4, Select, V4, $($name),*);
        every_backend_and_family!(@mod select_ipv6, Select, V6, $($name),*);
        every_backend_and_family!(@mod select_unix, Select, Unix, $($name),*);
        every_backend_and_family!(@mod poll_ipv4, Poll, V4, $($name),*);
        every_backend_and_family!(@mod poll_ipv6, Poll, V6, $($name),*);
        every_backend_and_family!(@mod poll_unix, Poll, Unix, $($name),*);
        every_backend_and_family!(@mod epoll_ipv4, Epoll, V4, $($name),*);
        every_backend_and_family!(@mod epoll_ipv6, Epoll, V6, $($name),*);
        every_backend_and_family!(@mod epoll_unix, Epoll, Unix, $($name),*);
    };
    (@mod $m:ident, $backend:ident, $fam:ident, $($name:ident),*) => {
        mod $m {
            $(
                #[test]
                fn $name() {
                    if let Some(env) = $crate::common::Env::new(
                        selectloop::Backend::$backend,
                        $crate::common::Fam::$fam,
                    ) {
                        super::$name(env);
                    }
                }
            )*
        }
    };
}
