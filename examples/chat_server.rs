//! A chat server on `AsyncChat`: the classic asynchat example, line by line.
//!
//! Try it with two terminals running `nc 127.0.0.1 8123` (or `telnet`):
//! the server asks each client for a name, then every line a named user
//! types is sent to every other named user as `<NAME> LINE`.
//!
//! The Python original (asynchat's typical chat server, as in the seed
//! articles):
//!
//! ```python
//! class ChatSession(asynchat.async_chat):
//!     def __init__(self, server, sock):
//!         asynchat.async_chat.__init__(self, sock)
//!         self.server = server
//!         self.set_terminator(b"\n")
//!         self.data = []
//!         self.name = None
//!         self.push(b"What's your name?\r\n")
//!
//!     def collect_incoming_data(self, data):
//!         self.data.append(data)
//!
//!     def found_terminator(self):
//!         line = b"".join(self.data).rstrip(b"\r")
//!         self.data = []
//!         if self.name is None:
//!             if line in self.server.users:
//!                 self.push(b"Name taken, please choose another.\r\n")
//!             else:
//!                 self.name = line
//!                 self.server.users[line] = self
//!                 self.push(b"Welcome, %s!\r\n" % line)
//!         else:
//!             self.server.broadcast(b"<%s> %s\r\n" % (self.name, line), self)
//!
//!     def handle_close(self):
//!         asynchat.async_chat.handle_close(self)
//!         self.server.users.pop(self.name, None)
//!
//! class ChatServer(asyncore.dispatcher):
//!     def __init__(self, port):
//!         asyncore.dispatcher.__init__(self)
//!         self.create_socket(socket.AF_INET, socket.SOCK_STREAM)
//!         self.set_reuse_addr()
//!         self.bind(('127.0.0.1', port))
//!         self.listen(5)
//!         self.users = {}
//!
//!     def handle_accepted(self, sock, addr):
//!         ChatSession(self, sock)
//!
//!     def broadcast(self, line, sender):
//!         for session in self.users.values():
//!             if session is not sender:
//!                 session.push(line)
//!
//! ChatServer(8123)
//! asyncore.loop()
//! ```
//!
//! What changes in Rust, and why:
//!
//! * `self.server.users` is shared by the server and every session. Python
//!   shares it through object references; here it is a [`Room`] in an
//!   `Rc<RefCell<_>>` (the loop is single-threaded, so `Rc` is enough).
//! * A session cannot hold references to other sessions: the map owns
//!   them. The room keeps each user's [`Handle`] instead (what
//!   `cx.add` returned), and `cx.channel_mut(handle)` reaches that user's channel to
//!   `push` a line, which is `session.push(line)`.
//! * Python removes the user in `handle_close`. Here the session's `Drop`
//!   does it: a channel leaves the map however it ends (the client hung up,
//!   an error, an over-long line), and its handler is dropped then.
//! * asynchat lets a line grow without bound; `AsyncChat` closes a client
//!   whose line passes `max_incoming` (64 KiB here) without a newline, and
//!   only that client.
//! * Python broadcasts names and lines as they come. Here control bytes
//!   in them (`\r`, terminal escape sequences) are sent as `\xNN`, so no
//!   user can forge another's `<NAME>` prefix on a terminal.
//! * asynchat queues output for a user who never reads without bound; here
//!   a user whose queue holds more than 128 KiB of heap
//!   ([`AsyncChat::queued_heap`]) when a line comes for them is dropped
//!   (the line itself always fits on top: one long line is not a slow
//!   reader), and a client whose own
//!   answers pile up (an unnamed client sending empty lines without
//!   reading) stops being read once they pass that limit. With 300 such
//!   users the server stays under 64 MiB.
//!
//! Run: `cargo run --example chat_server -- [--bind 127.0.0.1:8123] [--poll] [--trace]`

mod common;

use clap::Parser;
use selectloop::{
    AsyncChat, AsyncChatHandler, Context, Dispatcher, DisplayAddr, Handle, Handler, SockAddr,
    Socket,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// A line-based chat room over async_chat.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8123")]
    bind: SocketAddr,
    /// Close a connection that sends nothing for this many seconds (0: never)
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    idle_timeout: u64,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// The longest line a client may send (without its newline).
const MAX_LINE: usize = 64 * 1024;

/// The most output (in bytes of heap) that may wait for a user who does
/// not read; past it the user is dropped. It is also each channel's output
/// limit: a client whose own answers pass it stops being read.
const MAX_BACKLOG: usize = 128 * 1024;

/// Python's `server.users`: who is in the room, by name, and the token that
/// reaches each one's channel.
#[derive(Default)]
struct Room {
    users: BTreeMap<Vec<u8>, Handle<AsyncChat, ChatSession>>,
}

/// One client: Python's `ChatSession(async_chat)`.
struct ChatSession {
    room: Rc<RefCell<Room>>,
    /// `None` until the client has chosen a free name.
    name: Option<Vec<u8>>,
    /// Close the connection after this long without input.
    idle: Option<Duration>,
}

impl AsyncChatHandler for ChatSession {
    /// Python's `self.data.append(data)` (the default, which
    /// found_terminator's `take_incoming` joins), plus: any input pushes the
    /// idle deadline back.
    fn collect_incoming_data(&mut self, ch: &mut AsyncChat, data: &[u8]) {
        if let Some(idle) = self.idle {
            ch.set_timeout(idle);
        }
        ch.collect(data);
    }

    /// Silent for the idle timeout: say why, deliver what is queued, close
    /// (a client that connects and says nothing is not held forever).
    fn handle_timeout(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.push(b"Closing: idle for too long.\r\n");
        ch.close_when_done();
        Ok(())
    }

    fn found_terminator(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(idle) = self.idle {
            ch.set_timeout(idle); // an empty line is input too
        }
        // The terminator is b"\n"; a client that sends "\r\n" leaves a "\r".
        let mut line = ch.take_incoming();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        // Control bytes are shown, not obeyed (see `printable`).
        let line = printable(&line);
        let Some(name) = &self.name else {
            return self.choose_name(line, ch, cx);
        };
        // Python: self.server.broadcast(b"<%s> %s\r\n" % (self.name, line), self)
        let message = [&b"<"[..], name, b"> ", &line, b"\r\n"].concat();
        let me = cx.token();
        let mut too_slow = Vec::new();
        for &user in self.room.borrow().users.values() {
            if user.token() != me {
                // The other user's channel, by its handle: `session.push(line)`.
                if let Some(other) = cx.channel_mut(user) {
                    // Over the limit *before* this line: the user has not
                    // been reading. (Measured after, one long line of
                    // control bytes, each shown as 4, would pass it at
                    // once and drop every reader.)
                    let queued = other.queued_heap();
                    if queued > MAX_BACKLOG {
                        too_slow.push((user, queued));
                    } else {
                        other.push(&message);
                    }
                }
            }
        }
        // Python would queue for a user who never reads until memory runs
        // out. Here such a user is dropped (after the loop over the room:
        // closing drops the session, whose Drop edits the room).
        for (user, queued) in too_slow {
            log::warn!("dropping a user who does not read ({queued} bytes queued)");
            cx.close(user);
        }
        Ok(())
    }
}

impl ChatSession {
    /// The first lines of a session: the answer to "What's your name?".
    fn choose_name(
        &mut self,
        name: Vec<u8>,
        ch: &mut AsyncChat,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        let mut room = self.room.borrow_mut();
        if name.is_empty() {
            ch.push(b"What's your name?\r\n");
        } else if room.users.contains_key(&name) {
            ch.push(b"Name taken, please choose another.\r\n");
        } else {
            log::info!("{} joined", String::from_utf8_lossy(&name));
            ch.push(&[&b"Welcome, "[..], &name, b"!\r\n"].concat());
            room.users.insert(name.clone(), cx.handle(self, ch));
            self.name = Some(name);
        }
        Ok(())
    }
}

/// `raw` with its control bytes (below 0x20 except tab, and DEL) written as
/// `\xNN`. Sent raw, a `\r` returns a terminal's cursor to the start of the
/// line, so `evil\r<alice> hi` would show as a line from alice; escape
/// sequences could do worse. Bytes of 0x80 and above (UTF-8) pass.
fn printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for &b in raw {
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_bytes_are_escaped_and_text_passes() {
        assert_eq!(printable(b"evil\r<alice> hi"), b"evil\\x0d<alice> hi");
        assert_eq!(printable(b"\x1b[2J\x7f"), b"\\x1b[2J\\x7f");
        assert_eq!(
            printable("tab\tok, h\u{e9}".as_bytes()),
            "tab\tok, h\u{e9}".as_bytes()
        );
    }
}

/// Python's `handle_close`: `self.server.users.pop(self.name)`. The
/// session is dropped when its channel leaves the map, whatever the reason.
impl Drop for ChatSession {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            log::info!("{} left", String::from_utf8_lossy(&name));
            self.room.borrow_mut().users.remove(&name);
        }
    }
}

/// The listening socket: Python's `ChatServer(dispatcher)`.
struct ChatServer {
    room: Rc<RefCell<Room>>,
    idle: Option<Duration>,
}

impl Handler for ChatServer {
    fn handle_accepted(
        &mut self,
        _ch: &mut Dispatcher,
        sock: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        log::info!("Incoming connection from {}", DisplayAddr(&addr));
        // Python: ChatSession(self, sock), whose __init__ sets the
        // terminator and pushes the question.
        let mut ch = AsyncChat::new(Dispatcher::from_accepted(sock, addr)?).with_terminator(b"\n");
        ch.set_max_incoming(MAX_LINE);
        ch.set_output_limit(MAX_BACKLOG);
        ch.push(b"What's your name?\r\n");
        if let Some(idle) = self.idle {
            ch.set_timeout(idle);
        }
        cx.add(
            ch,
            ChatSession {
                room: self.room.clone(),
                name: None,
                idle: self.idle,
            },
        );
        Ok(())
    }
}

fn main() {
    let args: Args = common::parse_args();
    let event_loop = args.backend.start();

    // The signal channel first, then ChatServer(8123).
    let mut map = common::map_ending_on_signals();
    let room = Rc::new(RefCell::new(Room::default()));
    let idle = (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    map.add(common::listen(args.bind, 128), ChatServer { room, idle });
    common::run(&event_loop, &mut map); // asyncore.loop()
}
