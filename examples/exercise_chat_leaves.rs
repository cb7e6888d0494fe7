//! Exercise "announce leaves", reference solution: `chat_server` where the
//! room hears when a user leaves. The task, the hints and the checker are
//! in the guide's chapter `guide::exercises`; the checker is
//! `cargo test --test exercises chat_leaves` (point it at your own binary
//! with `EXERCISE_CHAT_LEAVES=target/debug/examples/my_chat`).
//!
//! The change: `handle_close` and `handle_error` announce
//! `* NAME has left` to every other named user before the channel closes.
//! The rest is `examples/chat_server.rs` cut down to what the exercise
//! needs, so that the change stands out: no `--idle-timeout`, no escaping
//! of control bytes in lines and names, and a slow reader dropped past
//! 1 MiB of queued bytes (`chat_server`: 128 KiB of heap).
//!
//! The session's `Drop` cannot announce the leave: by then there is no
//! [`Context`] to reach the other channels with.
//!
//! Run: `cargo run --example exercise_chat_leaves -- [--bind 127.0.0.1:8123] [--poll] [--trace]`

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

/// A line-based chat room over async_chat that announces leaves.
#[derive(Parser, Debug)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8123")]
    bind: SocketAddr,
    #[command(flatten)]
    backend: common::LoopArgs,
}

/// The longest line a client may send (without its newline).
const MAX_LINE: usize = 64 * 1024;

/// The most output that may wait for a user who does not read; past it the
/// user is dropped.
const MAX_BACKLOG: usize = 1024 * 1024;

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
}

impl AsyncChatHandler for ChatSession {
    /// The client hung up (or the connection broke): tell the room, then
    /// close, as the default `handle_close` does.
    fn handle_close(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        self.announce_leave(cx);
        ch.close();
        Ok(())
    }

    /// An over-long line or a failed hook: the user leaves too.
    fn handle_error(&mut self, ch: &mut AsyncChat, err: io::Error, cx: &mut Context<'_>) {
        log::warn!("{:?}: {err}; closing", ch);
        self.announce_leave(cx);
        ch.close();
    }

    // collect_incoming_data is not written out: its default appends the data
    // to the channel's buffer, which found_terminator takes. That is
    // Python's `self.data.append(data)` and `b"".join(self.data)`.

    fn found_terminator(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        // The terminator is b"\n"; a client that sends "\r\n" leaves a "\r".
        let mut line = ch.take_incoming();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let Some(name) = &self.name else {
            return self.choose_name(line, ch, cx);
        };
        // Python: self.server.broadcast(b"<%s> %s\r\n" % (self.name, line), self)
        let message = [&b"<"[..], name, b"> ", &line, b"\r\n"].concat();
        let me = cx.token();
        let mut too_slow = Vec::new();
        for &token in self.room.borrow().users.values() {
            if token.token() != me {
                // The other user's channel, by its handle: `session.push(line)`.
                if let Some(other) = cx.channel_mut(token) {
                    other.push(&message);
                    if other.pending_output() > MAX_BACKLOG {
                        too_slow.push(token);
                    }
                }
            }
        }
        // Python would queue for a user who never reads until memory runs
        // out. Here such a user is dropped (after the loop over the room:
        // closing drops the session, whose Drop edits the room).
        for token in too_slow {
            log::warn!("dropping a user who does not read ({MAX_BACKLOG} bytes queued)");
            cx.close(token);
        }
        Ok(())
    }
}

impl ChatSession {
    /// `* NAME has left` to every other named user; the name is free again.
    /// A user who never chose a name leaves without a word.
    fn announce_leave(&mut self, cx: &mut Context<'_>) {
        let Some(name) = self.name.take() else {
            return;
        };
        log::info!("{} left", String::from_utf8_lossy(&name));
        let others: Vec<Handle<AsyncChat, ChatSession>> = {
            let mut room = self.room.borrow_mut();
            room.users.remove(&name);
            room.users.values().copied().collect()
        };
        let message = [&b"* "[..], &name, b" has left\r\n"].concat();
        for token in others {
            if let Some(other) = cx.channel_mut(token) {
                other.push(&message);
            }
        }
    }

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
        ch.push(b"What's your name?\r\n");
        cx.add(
            ch,
            ChatSession {
                room: self.room.clone(),
                name: None,
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
    map.add(common::listen(args.bind, 128), ChatServer { room });
    common::run(&event_loop, &mut map); // asyncore.loop()
}
