//! selectloop: crate docs (tour) follow.
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

mod channel;
mod context;
mod dispatcher;
mod dispatcher_with_send;
pub mod event_loop;
mod file_dispatcher;
mod handler;
mod map;
pub mod readwrite;
pub mod sys;

pub use channel::{Channel, IntoChannel};
pub use context::Context;
pub use dispatcher::{is_disconnected, Dispatcher, DisplayAddr, DISCONNECTED};
pub use dispatcher_with_send::{DispatcherWithSend, DEFAULT_OUTPUT_LIMIT, SEND_SLICE};
pub use event_loop::{poll, poll2, Control, Loop, Stop};
pub use file_dispatcher::FileWrapper;
pub use handler::{DispatcherType, Handler};
pub use map::{Map, Token};
pub use socket2::{Domain, SockAddr, Socket, Type};
