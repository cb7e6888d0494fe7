//! `async_chat`: terminator-driven protocols (line-based chat, HTTP headers
//! then a counted body, SMTP-like dialogues) and queued output with
//! producers: Python's `asynchat`.
//!
//! The input side cuts the byte stream into messages: you set a
//! [`Terminator`] (a byte string such as `b"\r\n"`, a byte count, or none),
//! the channel hands every byte before it to
//! [`collect_incoming_data`](AsyncChatHandler::collect_incoming_data) and
//! calls [`found_terminator`](AsyncChatHandler::found_terminator) at each
//! terminator, however the bytes were split between reads.
//!
//! The output side is a queue: [`push`](AsyncChat::push) bytes, or
//! [`push_with_producer`](AsyncChat::push_with_producer) a
//! [`Producer`] that makes output on demand; the queue is sent in slices of
//! [`ac_out_buffer_size`](AsyncChat::ac_out_buffer_size) as the socket takes
//! them, and [`close_when_done`](AsyncChat::close_when_done) closes the
//! channel once it has drained.

mod handler;
mod input;
mod terminator;

pub use handler::AsyncChatHandler;
pub use terminator::{find_prefix_at_end, IncomingTooLong, Terminator};

use crate::dispatcher::{CloseReason, Dispatcher};
use crate::dispatcher_with_send::DEFAULT_OUTPUT_LIMIT;
use crate::handler::DispatcherType;
use crate::output_queue::{OutputQueue, Sent};
use crate::producer::Producer;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// asynchat's `ac_in_buffer_size`: bytes asked of each `recv`.
pub const DEFAULT_AC_IN_BUFFER_SIZE: usize = 65536;

/// asynchat's `ac_out_buffer_size`: the largest slice given to one `send`.
pub const DEFAULT_AC_OUT_BUFFER_SIZE: usize = 65536;

/// The default [`max_incoming`](AsyncChat::max_incoming): 64 KiB of data may
/// wait for a byte-string terminator.
pub const DEFAULT_MAX_INCOMING: usize = 65536;

/// asynchat's `async_chat`: a [`Dispatcher`] that cuts its input at a
/// [`Terminator`] and queues its output. Your protocol is a struct
/// implementing [`AsyncChatHandler`].
///
/// A chat-like line protocol, with a client thread so the example runs on
/// its own:
///
/// ```
/// use selectloop::{AsyncChat, AsyncChatHandler, Context, Dispatcher, Loop, Map};
/// use std::io::{self, BufRead, BufReader, Write};
/// use std::os::unix::net::UnixStream;
/// use std::time::Duration;
///
/// /// Answers each line with its length; "quit" closes after the answer.
/// struct LineLength;
///
/// impl AsyncChatHandler for LineLength {
///     // collect_incoming_data: the default accumulates in ch.incoming().
///     fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
///         let line = ch.take_incoming();
///         ch.push(format!("{} bytes\n", line.len()).as_bytes());
///         if line == b"quit" {
///             ch.close_when_done();
///         }
///         Ok(())
///     }
/// }
///
/// let (server_side, mut client) = UnixStream::pair()?;
/// let mut map = Map::new();
/// map.add(AsyncChat::new(Dispatcher::from_socket(server_side)?).with_terminator(b"\n"), LineLength);
///
/// client.write_all(b"hello\nquit\n")?;
/// // Runs until the channel closes itself (the map is then empty).
/// Loop::new().timeout(Duration::from_millis(100)).count(100).run(&mut map)?;
///
/// let mut answers = String::new();
/// for line in BufReader::new(client).lines() {
///     answers += &line?;
///     answers += ";";
/// }
/// assert_eq!(answers, "5 bytes;4 bytes;");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Differences from asynchat, on purpose:
///
/// * **Bounded input.** While the terminator is a byte string, at most
///   [`max_incoming`](Self::max_incoming) bytes (64 KiB unless set) may be
///   collected without it; one more byte and the channel gets an
///   [`IncomingTooLong`] error through `handle_error` and is closed, so a
///   peer that never sends the terminator cannot exhaust memory.
/// * **Bounded output.** The output queue has a limit in bytes of heap
///   really held ([`output_limit`](Self::output_limit), 256 KiB unless
///   set): small pushes share buffers (asynchat paid an allocation and a
///   queue entry per push, about eight times the payload for short lines),
///   and while the queue is over the limit ([`is_full`](Self::is_full)) the
///   channel stops reading and stops handing messages to
///   `found_terminator`: a peer that sends requests without reading the
///   answers is slowed down by TCP flow control instead of growing the
///   server's memory.
/// * **Closing loses no data.** A reached `close_when_done` (and the
///   delivery after a half-close) ends with a
///   [lingering close](Dispatcher::linger_close): the peer never gets a
///   reset that destroys the tail it has not read.
/// * **Half-close delivers the queue.** When the peer shuts down its write
///   side (a read of 0 bytes) while output is queued, the default
///   `handle_close` delivers it, then closes
///   ([`close_after_eof`](Self::close_after_eof)); asynchat closed at once
///   and dropped it.
/// * **No copy when idle.** `push` sends straight from the caller's slice
///   when nothing is queued and queues only what the kernel did not take.
/// * **Errors stay with their channel.** `push` cannot fail: a send error
///   (other than would-block or "peer gone") is kept and handed to this
///   channel's `handle_error` at its next event, even when the push came
///   from another channel's handler (a chat broadcast).
/// * **A closed channel stops reading.** If `found_terminator` closes the
///   channel, the rest of the data already read is dropped instead of being
///   fed to a dead channel.
/// * **A failing `found_terminator` cannot pile up input.** As in asynchat,
///   the rest of that read waits for the next read event. If the handler's
///   `handle_error` keeps the channel and the backlog passes `max_incoming`
///   (or one read, if larger), that is an [`IncomingTooLong`] error and the
///   channel closes.
///
/// It dereferences to [`Dispatcher`], so `recv`, `addr()`, `connected()`
/// and the rest are there as in Python's subclass.
pub struct AsyncChat {
    inner: Dispatcher,
    terminator: Terminator,
    /// The read buffer. Only `..ac_in_len` is input; between reads that is
    /// at most a partial terminator. The rest is initialized space for the
    /// next `recv`, kept so that reads neither allocate nor zero memory.
    ac_in_buffer: Vec<u8>,
    /// Bytes of `ac_in_buffer` read and not yet processed.
    ac_in_len: usize,
    /// Where the default `collect_incoming_data` accumulates.
    incoming: Vec<u8>,
    /// asynchat's `producer_fifo`: bytes, producers, the close marker.
    out: OutputQueue,
    /// The output limit in bytes of heap.
    output_limit: usize,
    /// The input scan stopped because the output was over its limit; the
    /// rest of the read waits in `ac_in_buffer`.
    pub(super) input_paused: bool,
    /// A `close_when_done` marker is queued.
    closing_when_done: bool,
    ac_in_buffer_size: usize,
    ac_out_buffer_size: usize,
    max_incoming: usize,
    /// Bytes collected under a byte-string terminator since the last one.
    collected: usize,
    /// The `close_when_done` marker was reached: `handle_close` is due.
    close_reached: bool,
    /// A send error from `push`, for this channel's `handle_error`.
    send_error: Option<io::Error>,
    /// `discard_buffers` ran while input was being processed.
    discarded: bool,
    /// The incoming-data limit was exceeded in the current read.
    overflowed: bool,
}

impl AsyncChat {
    /// Wraps a dispatcher (for example `Dispatcher::from_socket(sock)?` for
    /// an accepted connection, or one made with `create_socket` and
    /// `connect`). The terminator starts as [`Terminator::None`].
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher, Terminator};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// assert_eq!(ch.get_terminator(), &Terminator::None);
    /// assert!(ch.connected());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: Dispatcher) -> Self {
        AsyncChat {
            inner,
            terminator: Terminator::None,
            ac_in_buffer: Vec::new(),
            ac_in_len: 0,
            incoming: Vec::new(),
            out: OutputQueue::default(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            input_paused: false,
            closing_when_done: false,
            ac_in_buffer_size: DEFAULT_AC_IN_BUFFER_SIZE,
            ac_out_buffer_size: DEFAULT_AC_OUT_BUFFER_SIZE,
            max_incoming: DEFAULT_MAX_INCOMING,
            collected: 0,
            close_reached: false,
            send_error: None,
            discarded: false,
            overflowed: false,
        }
    }

    /// Sets the terminator and returns the channel, for registering in one
    /// expression.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher, Terminator};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let ch = AsyncChat::new(Dispatcher::from_socket(a)?).with_terminator("\r\n");
    /// assert_eq!(ch.get_terminator(), &Terminator::Bytes(b"\r\n".to_vec()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_terminator(mut self, term: impl Into<Terminator>) -> Self {
        self.set_terminator(term);
        self
    }

    /// Sets the terminator (asynchat's `set_terminator`): a byte string, a
    /// count, or [`Terminator::None`]. May be called at any time, also from
    /// `found_terminator`, where it applies to the data that follows.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher, Terminator};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_terminator(b"\r\n\r\n"); // HTTP headers...
    /// ch.set_terminator(1024usize);   // ...then a counted body
    /// ch.set_terminator(Terminator::None);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_terminator(&mut self, term: impl Into<Terminator>) {
        self.terminator = term.into();
    }

    /// The current terminator (asynchat's `get_terminator`). A count goes
    /// down as data is collected.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher, Terminator};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let ch = AsyncChat::new(Dispatcher::from_socket(a)?).with_terminator(3usize);
    /// assert_eq!(ch.get_terminator(), &Terminator::Count(3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_terminator(&self) -> &Terminator {
        &self.terminator
    }

    /// Bytes asked of each `recv` (asynchat's `ac_in_buffer_size`, 64 KiB).
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_ac_in_buffer_size(4096);
    /// assert_eq!(ch.ac_in_buffer_size(), 4096);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ac_in_buffer_size(&self) -> usize {
        self.ac_in_buffer_size
    }

    /// Sets the bytes asked of each `recv` (at least 1).
    pub fn set_ac_in_buffer_size(&mut self, size: usize) {
        self.ac_in_buffer_size = size.max(1);
    }

    /// The largest slice of output given to one `send` (asynchat's
    /// `ac_out_buffer_size`, 64 KiB): a pushed buffer goes out in slices of
    /// at most this size, one per write event.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_ac_out_buffer_size(512);
    /// assert_eq!(ch.ac_out_buffer_size(), 512);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ac_out_buffer_size(&self) -> usize {
        self.ac_out_buffer_size
    }

    /// Sets the largest slice given to one `send` (at least 1).
    pub fn set_ac_out_buffer_size(&mut self, size: usize) {
        self.ac_out_buffer_size = size.max(1);
    }

    /// How many bytes may be collected while waiting for a byte-string
    /// terminator (default [`DEFAULT_MAX_INCOMING`], 64 KiB). Past it, the
    /// channel gets an [`IncomingTooLong`] error and closes. The count
    /// starts again at each terminator and at
    /// [`discard_buffers`](Self::discard_buffers). It does not apply to a
    /// count terminator (you chose the size) nor to `Terminator::None`
    /// (you asked for everything): bound those in your own
    /// `collect_incoming_data` if the peer is not trusted.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_max_incoming(1 << 20); // 1 MiB lines are fine here
    /// assert_eq!(ch.max_incoming(), 1 << 20);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_incoming(&self) -> usize {
        self.max_incoming
    }

    /// Sets the incoming-data limit in bytes (`usize::MAX`: no limit).
    pub fn set_max_incoming(&mut self, limit: usize) {
        self.max_incoming = limit;
    }

    /// What the default `collect_incoming_data` has accumulated since the
    /// last [`take_incoming`](Self::take_incoming).
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// assert!(ch.incoming().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn incoming(&self) -> &[u8] {
        &self.incoming
    }

    /// Takes what the default `collect_incoming_data` accumulated, leaving
    /// it empty (asynchat's `_get_data`): the message, in `found_terminator`.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// assert_eq!(ch.take_incoming(), b"");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn take_incoming(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.incoming)
    }

    /// Appends to the accumulated incoming data: what the default
    /// `collect_incoming_data` does (asynchat's `_collect_incoming_data`).
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.collect(b"ab");
    /// ch.collect(b"c");
    /// assert_eq!(ch.incoming(), b"abc");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn collect(&mut self, data: &[u8]) {
        self.incoming.extend_from_slice(data);
    }

    /// Queues `data` for sending and sends what the socket takes now
    /// (asynchat's `push`). Only bytes are accepted (`&[u8]`: a `&str` must
    /// be passed as `s.as_bytes()`), so asynchat's `TypeError` for other
    /// types is a compile-time error here. After
    /// [`close_when_done`](Self::close_when_done) a push is dropped (never
    /// sent, as in asynchat; [`DispatcherWithSend::send`](crate::DispatcherWithSend::send)
    /// still delivers before its close).
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// use std::io::Read;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.push(b"hello\r\n");
    /// let mut got = [0u8; 7];
    /// b.read_exact(&mut got)?; // connected and idle: sent at once
    /// assert_eq!(&got, b"hello\r\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// ```compile_fail
    /// # use selectloop::{AsyncChat, Dispatcher};
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # let mut ch = AsyncChat::new(Dispatcher::from_socket(a).unwrap());
    /// ch.push(10); // asynchat: TypeError; here: does not compile
    /// ```
    pub fn push(&mut self, data: &[u8]) {
        if self.closing_when_done {
            return self.dropped_after_close_when_done(data.len());
        }
        let mut rest = data;
        if self.out.is_empty() && self.inner.connected() && self.send_error.is_none() {
            let end = data.len().min(self.ac_out_buffer_size);
            match self.inner.send(&data[..end]) {
                Ok(n) => rest = &data[n..],
                Err(e) => self.send_error = Some(e),
            }
        }
        self.out.push_bytes(rest);
    }

    /// Queues a [`Producer`] (asynchat's `push_with_producer`): its
    /// [`more`](Producer::more) is called when its turn comes, until it
    /// returns an empty buffer. A `Vec<u8>`, `String` or `&'static [u8]`
    /// is a producer that yields itself once.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher, SimpleProducer};
    /// use std::io::Read;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.push_with_producer(SimpleProducer::with_buffer_size(b"abcdef".to_vec(), 4));
    /// let mut got = [0u8; 4];
    /// b.read_exact(&mut got)?; // the first piece goes out at once
    /// assert_eq!(&got, b"abcd");
    /// assert!(ch.has_output()); // "ef" waits for the next write event
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn push_with_producer(&mut self, producer: impl Producer) {
        if self.closing_when_done {
            return self.dropped_after_close_when_done(0);
        }
        self.out.push_producer(Box::new(producer));
        self.initiate_send_keep_error();
    }

    /// Closes the channel once everything queued so far has been sent
    /// (asynchat's `close_when_done`); then the handler's
    /// [`handle_close`](AsyncChatHandler::handle_close) runs (its default
    /// closes). Anything pushed afterwards is never sent.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.close_when_done();
    /// assert!(ch.has_output()); // writable until the close is reached
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close_when_done(&mut self) {
        if self.closing_when_done {
            return;
        }
        // As asynchat: only queued; the next write event reaches it.
        self.out.push_close();
        self.closing_when_done = true;
    }

    /// A push after [`close_when_done`](Self::close_when_done): asynchat
    /// queues it behind the close, so it is never sent; here it is not
    /// queued at all (queued, it would keep the channel from closing).
    #[cold]
    fn dropped_after_close_when_done(&self, len: usize) {
        log::debug!(
            "{:?}: push after close_when_done ({len} bytes), dropped",
            self.inner
        );
    }

    /// What the default `handle_close` does: if the peer only shut down its
    /// write side (`recv` read 0 bytes: [`CloseReason::Eof`]) and output is
    /// still queued, deliver it and then close
    /// ([`close_when_done`](Self::close_when_done)); once a
    /// `close_when_done` is reached, close with a
    /// [lingering close](Dispatcher::linger_close), so the peer never gets
    /// a reset that destroys the tail it has not read; after a reset or an
    /// error, close now. asynchat closed at once and dropped the queue.
    pub fn close_after_eof(&mut self) {
        let reason = self.inner.close_reason();
        let clean = matches!(reason, None | Some(CloseReason::Eof)) && self.send_error.is_none();
        if !clean || !self.inner.connected() {
            return self.close();
        }
        if !self.out.is_empty() {
            if reason == Some(CloseReason::Eof) && !self.closing_when_done {
                self.close_when_done();
            }
            if self.closing_when_done {
                return; // delivered first; then this runs again
            }
            return self.close();
        }
        if reason == Some(CloseReason::Eof) || self.closing_when_done {
            // The last byte is out: close without a reset.
            self.discard_buffers();
            self.inner.linger_close();
        } else {
            self.close();
        }
    }

    /// Drops all buffered input and queued output, including a pending
    /// `close_when_done` (asynchat's `discard_buffers`: "emergencies only").
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.collect(b"partial");
    /// ch.close_when_done();
    /// ch.discard_buffers();
    /// assert!(ch.incoming().is_empty() && !ch.has_output());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn discard_buffers(&mut self) {
        self.ac_in_len = 0;
        self.incoming.clear();
        self.out.clear();
        self.input_paused = false;
        self.closing_when_done = false;
        self.close_reached = false;
        self.collected = 0;
        self.discarded = true;
    }

    /// Whether output (or a `close_when_done`) is queued: the default
    /// `writable()` while connected.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// assert!(!ch.has_output());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.close_reached || self.send_error.is_some()
    }

    /// Bytes pushed and not yet sent (asynchat has no such count). Producers
    /// not yet asked for their data count as 0. A server that pushes to
    /// peers on behalf of others (a chat broadcast) can use it to drop a
    /// peer that does not read, instead of queueing for it without bound.
    /// A counter: O(1).
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_ac_out_buffer_size(4);
    /// ch.push(b"0123456789"); // idle: "0123" is sent at once
    /// assert_eq!(ch.pending_output(), 6);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pending_output(&self) -> usize {
        self.out.pending()
    }

    /// Bytes of heap the output queue holds (its buffers' capacity, at
    /// least [`pending_output`](Self::pending_output)): what the output
    /// limit is compared with. Small pushes share buffers, so a thousand
    /// 8-byte lines hold about 8 KiB.
    pub fn queued_heap(&self) -> usize {
        self.out.heap_bytes()
    }

    /// The output limit in bytes of heap (default [`DEFAULT_OUTPUT_LIMIT`],
    /// 256 KiB). See [`is_full`](Self::is_full).
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_output_limit(1 << 20);
    /// assert_eq!(ch.output_limit(), 1 << 20);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn output_limit(&self) -> usize {
        self.output_limit
    }

    /// Sets the output limit in bytes of heap (at least 1).
    pub fn set_output_limit(&mut self, limit: usize) {
        self.output_limit = limit.max(1);
    }

    /// Whether the output queue holds its limit or more in heap. While it
    /// does, the channel stops reading its peer: the default `readable()`
    /// is `false`, and a read already under way stops handing messages to
    /// `found_terminator` (the rest waits, and is handled once the queue
    /// has drained below the limit). A peer that sends requests without
    /// reading the answers thus fills the kernel's buffers and is slowed
    /// down by TCP flow control, instead of growing the queue without
    /// bound. `push` itself never fails: a server pushing to *other*
    /// channels (a chat broadcast) checks `is_full` and decides (drop the
    /// slow peer, skip the message).
    pub fn is_full(&self) -> bool {
        self.out.heap_bytes() >= self.output_limit
    }

    /// Sends the next slice of queued output, at most
    /// [`ac_out_buffer_size`](Self::ac_out_buffer_size) bytes, asking
    /// producers for more as needed (asynchat's `initiate_send`). The loop
    /// calls it on each write event; `push` calls it too. Nothing happens
    /// while the channel is not connected.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// use std::io::Read;
    /// let (a, mut b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.set_ac_out_buffer_size(2);
    /// ch.push(b"abcd"); // sends "ab"
    /// ch.initiate_send()?; // sends "cd"
    /// let mut got = [0u8; 4];
    /// b.read_exact(&mut got)?;
    /// assert_eq!(&got, b"abcd");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn initiate_send(&mut self) -> io::Result<()> {
        if !self.inner.connected() {
            return Ok(());
        }
        let inner = &mut self.inner;
        if self
            .out
            .send_next(self.ac_out_buffer_size, |b| inner.send(b))?
            == Sent::Close
        {
            self.close_reached = true;
        }
        Ok(())
    }

    /// `initiate_send` from `push`, where an error cannot be returned: keep
    /// it for this channel's `handle_error`.
    fn initiate_send_keep_error(&mut self) {
        if self.send_error.is_some() {
            return;
        }
        if let Err(e) = self.initiate_send() {
            self.send_error = Some(e);
        }
    }

    /// Closes the channel now (asyncore's `close`); buffered input and
    /// queued output are dropped.
    ///
    /// ```
    /// use selectloop::{AsyncChat, Dispatcher};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// let mut ch = AsyncChat::new(Dispatcher::from_socket(a)?);
    /// ch.push(b"never sent? no: sent at once, the socket was idle");
    /// ch.close();
    /// assert!(ch.is_closed() && !ch.has_output());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn close(&mut self) {
        self.discard_buffers();
        self.send_error = None;
        self.inner.close();
    }
}

impl Deref for AsyncChat {
    type Target = Dispatcher;
    fn deref(&self) -> &Dispatcher {
        &self.inner
    }
}

impl DerefMut for AsyncChat {
    fn deref_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
}

impl DispatcherType for AsyncChat {
    #[inline]
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    #[inline]
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    /// Readable while the output is under its limit and the peer has not
    /// ended (asynchat: always).
    #[inline]
    fn default_readable(&self) -> bool {
        self.inner.is_lingering() || (!self.is_full() && !self.inner.read_ended())
    }
    /// asynchat: `producer_fifo or not connected`.
    #[inline]
    fn default_writable(&self) -> bool {
        !self.inner.is_lingering() && (!self.inner.connected() || self.has_output())
    }
    fn default_handle_write(&mut self) -> io::Result<()> {
        self.initiate_send()
    }
    /// Delivers what is queued, then closes.
    fn default_handle_shutdown(&mut self) -> io::Result<()> {
        if !self.closing_when_done {
            self.close_when_done();
        }
        Ok(())
    }
    fn close(&mut self) {
        AsyncChat::close(self)
    }
}

/// The fd, or `-1` once closed.
impl AsRawFd for AsyncChat {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// The socket's fd (see [`Dispatcher`]'s `AsFd`: panics once closed).
impl AsFd for AsyncChat {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// `write` is [`push`](AsyncChat::push): all of `buf` is taken (sent or
/// queued), or, while the output is over its limit, nothing and an error
/// of kind `WouldBlock`. `flush` does nothing: the loop sends the queue.
/// (No `Read`: input goes through the terminator scan.)
impl io::Write for AsyncChat {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.is_full() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for AsyncChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (async_chat, terminator {}, {} bytes queued)",
            self.inner,
            self.terminator,
            self.out.pending()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_output_counts_unsent_bytes() {
        use std::io::Read;
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ch = AsyncChat::new(Dispatcher::from_socket(a).unwrap());
        ch.set_ac_out_buffer_size(4);
        ch.push(b"0123456789"); // "0123" goes out at once
        assert_eq!(ch.pending_output(), 6);
        ch.initiate_send().unwrap();
        assert_eq!(ch.pending_output(), 2);
        ch.push_with_producer(crate::SimpleProducer::with_buffer_size(
            b"abcdefgh".to_vec(),
            4,
        ));
        ch.initiate_send().unwrap(); // "89", then the producer's "abcd"
        ch.initiate_send().unwrap();
        assert_eq!(ch.pending_output(), 0);
        ch.push(b"xyz");
        ch.discard_buffers();
        assert_eq!(ch.pending_output(), 0);
        let mut got = [0u8; 14];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"0123456789abcd");
    }
}
