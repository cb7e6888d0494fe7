//! The course: learn select(2) and poll(2), then asyncore, by reading,
//! running, watching and breaking small servers. Nothing in this module is
//! code; it is the crate's documentation, in chapters, in reading order.
//!
//! Every chapter has commands to run. Start with two terminals in the
//! crate's directory; any client will do (`nc 127.0.0.1 PORT`, `telnet`,
//! or a few lines of Python).
//!
//! | # | chapter | what you learn | run |
//! |---|---|---|---|
//! | 1 | [Why an event loop; select(2) and poll(2)](select_and_poll) | three ways to serve many clients; what each syscall takes and returns | the doctests |
//! | 2 | [The raw servers](raw_servers) | a whole server on select(2), then on poll(2), with no library; what the Python originals get wrong | `select_server`, `poll_server` |
//! | 3 | [The event rules](event_rules) | how readiness becomes `handle_read`, `handle_write`, ...; the shape of a handler in Rust | `http_client` |
//! | 4 | [Reading the trace](reading_the_trace) | every line `--trace` prints; a picture of the loop | `trace_picture` |
//! | 5 | [`echo_server`] | dispatchers, `handle_accepted`, buffered output and backpressure | `echo_server` |
//! | 6 | [`http_client`] | non-blocking connect, `writable()` driven by a buffer, many clients on one loop | `http_client` |
//! | 7 | [`port_forwarder`] | two channels sharing buffers, closing a peer, half-close, refused connects | `port_forwarder` |
//! | 8 | [`chat_server`] | `async_chat`: terminators, `push`, reaching other channels by token | `chat_server` |
//! | 9 | [`file_cat`] | pipes and regular files in the loop; `POLLHUP` with data left | `file_cat` |
//! | 10 | [What happens if you forget X](forget_x) | five classic mistakes, each made and measured | `cargo test --test forget_x` |
//! | 11 | [Why a listening socket is never in the write set](listener_never_writable) | what "writable" means, and for whom | |
//! | 12 | [A close is `POLLIN`, a reset is `POLLIN\|POLLERR\|POLLHUP`](close_and_reset) | what the kernel reports when a peer leaves, and why | `poll_server --trace` |
//! | 13 | [Level- and edge-triggered; epoll, kqueue, io_uring](level_and_edge) | where the next APIs differ from select and poll | |
//! | 14 | [Exercises](exercises) | change the servers; a test checks your answer | `cargo test --test exercises` |
//! | 15 | [Writing a daemon](daemon) | timers, idle timeouts, signals, worker threads, child processes, graceful shutdown | `kv_daemon` |
//!
//! The examples' command lines (flags, output, exit codes) are specified
//! in the repository's `docs/EXAMPLES.md`, and checked by the tests in
//! `tests/example_*.rs`.

#[doc = include_str!("select_and_poll.md")]
pub mod select_and_poll {}

#[doc = include_str!("raw_servers.md")]
pub mod raw_servers {}

#[doc = include_str!("event_rules.md")]
pub mod event_rules {}

#[doc = include_str!("reading_the_trace.md")]
#[doc = include_str!("../../docs/echo-loop.svg")]
#[doc = include_str!("reading_the_trace_table.md")]
pub mod reading_the_trace {}

#[doc = include_str!("echo_server.md")]
pub mod echo_server {}

#[doc = include_str!("http_client.md")]
pub mod http_client {}

#[doc = include_str!("port_forwarder.md")]
pub mod port_forwarder {}

#[doc = include_str!("chat_server.md")]
pub mod chat_server {}

#[doc = include_str!("file_cat.md")]
pub mod file_cat {}

#[doc = include_str!("forget_x.md")]
pub mod forget_x {}

#[doc = include_str!("listener_never_writable.md")]
pub mod listener_never_writable {}

#[doc = include_str!("close_and_reset.md")]
pub mod close_and_reset {}

#[doc = include_str!("level_and_edge.md")]
pub mod level_and_edge {}

#[doc = include_str!("exercises.md")]
pub mod exercises {}

#[doc = include_str!("daemon.md")]
pub mod daemon {}
