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

use crate::context::Context;
use crate::dispatcher::Dispatcher;
use crate::handler::{DispatcherType, Handler};
use crate::producer::Producer;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};

/// asynchat's `ac_in_buffer_size`: bytes asked of each `recv`.
pub const DEFAULT_AC_IN_BUFFER_SIZE: usize = 65536;

/// asynchat's `ac_out_buffer_size`: the largest slice given to one `send`.
pub const DEFAULT_AC_OUT_BUFFER_SIZE: usize = 65536;

/// The default [`max_incoming`](AsyncChat::max_incoming): 64 KiB of data may
/// wait for a byte-string terminator.
pub const DEFAULT_MAX_INCOMING: usize = 65536;

/// Where a message ends (asynchat's `set_terminator` argument).
///
/// Converts from byte strings, strings and `usize`, so
/// `ch.set_terminator(b"\r\n")`, `ch.set_terminator("\n")` and
/// `ch.set_terminator(42usize)` all work; `Terminator::None` collects
/// everything until the peer closes.
///
/// A negative count cannot be expressed (`usize`); from a signed number,
/// [`Terminator::try_from`] refuses it with a clear error, as asynchat's
/// `set_terminator(-1)` raises `ValueError`.
///
/// ```
/// use selectloop::Terminator;
///
/// assert_eq!(Terminator::from(b"\r\n"), Terminator::Bytes(b"\r\n".to_vec()));
/// assert_eq!(Terminator::from(5usize), Terminator::Count(5));
/// assert!(Terminator::try_from(-1i64).is_err());
/// assert_eq!(Terminator::try_from(7i64).unwrap(), Terminator::Count(7));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Terminator {
    /// A message ends with these bytes (found even when split across
    /// reads). The terminator itself is not passed to
    /// `collect_incoming_data`. An empty byte string acts as
    /// [`Terminator::None`], as in asynchat.
    Bytes(Vec<u8>),
    /// A message is exactly this many bytes. The count goes down as data is
    /// collected, and is 0 once `found_terminator` runs: from then on,
    /// unless you set a new terminator, everything is collected and
    /// `found_terminator` is not called again (asynchat's behaviour: a count
    /// of 0 acts as `None`).
    Count(usize),
    /// No terminator: all data goes to `collect_incoming_data`,
    /// `found_terminator` is never called.
    None,
}

impl Terminator {
    /// Whether this terminator collects everything without ever firing
    /// (`None`, `Count(0)`, an empty byte string).
    ///
    /// ```
    /// use selectloop::Terminator;
    /// assert!(Terminator::Count(0).collects_all());
    /// assert!(!Terminator::from("\n").collects_all());
    /// ```
    pub fn collects_all(&self) -> bool {
        match self {
            Terminator::Bytes(b) => b.is_empty(),
            Terminator::Count(n) => *n == 0,
            Terminator::None => true,
        }
    }
}

impl From<&[u8]> for Terminator {
    fn from(b: &[u8]) -> Self {
        Terminator::Bytes(b.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Terminator {
    fn from(b: &[u8; N]) -> Self {
        Terminator::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Terminator {
    fn from(b: Vec<u8>) -> Self {
        Terminator::Bytes(b)
    }
}

impl From<&str> for Terminator {
    fn from(s: &str) -> Self {
        Terminator::Bytes(s.as_bytes().to_vec())
    }
}

impl From<usize> for Terminator {
    fn from(n: usize) -> Self {
        Terminator::Count(n)
    }
}

/// A signed count: negative is refused (kind `InvalidInput`), as
/// asynchat's `set_terminator(-1)` raises `ValueError`.
impl TryFrom<i64> for Terminator {
    type Error = io::Error;
    fn try_from(n: i64) -> io::Result<Self> {
        usize::try_from(n).map(Terminator::Count).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("terminator count must be 0 or more, got {n}"),
            )
        })
    }
}

impl fmt::Display for Terminator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Terminator::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            Terminator::Count(n) => write!(f, "{n} bytes"),
            Terminator::None => f.write_str("none"),
        }
    }
}

/// The error a channel gets (through
/// [`handle_error`](AsyncChatHandler::handle_error)) when more than
/// [`max_incoming`](AsyncChat::max_incoming) bytes arrive without the
/// byte-string terminator; the channel is then closed. It is the payload of
/// an `io::Error` of kind `InvalidData`:
///
/// ```
/// use selectloop::IncomingTooLong;
/// # let err: std::io::Error = IncomingTooLong { limit: 10, terminator: b"\n".to_vec() }.into();
/// // in handle_error(&mut self, ch, err, cx):
/// if let Some(too_long) = err.get_ref().and_then(|e| e.downcast_ref::<IncomingTooLong>()) {
///     assert_eq!(too_long.limit, 10);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingTooLong {
    /// The limit in bytes that was exceeded.
    pub limit: usize,
    /// The terminator that did not come.
    pub terminator: Vec<u8>,
}

impl fmt::Display for IncomingTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "more than {} bytes of incoming data without the terminator b\"{}\" (max_incoming)",
            self.limit,
            self.terminator.escape_ascii()
        )
    }
}

impl Error for IncomingTooLong {}

impl From<IncomingTooLong> for io::Error {
    fn from(e: IncomingTooLong) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Given `haystack`, the length of the longest proper prefix of `needle`
/// that `haystack` ends with (asynchat's `find_prefix_at_end`): how many
/// bytes at the end of a buffer may be the start of a terminator that the
/// next read completes. Assumes `needle` itself is not at the end (that is
/// checked first); 0 for an empty needle.
///
/// ```
/// use selectloop::find_prefix_at_end;
/// assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
/// assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
/// assert_eq!(find_prefix_at_end(b"data\r\n\r", b"\r\n\r\n"), 3);
/// ```
pub fn find_prefix_at_end(haystack: &[u8], needle: &[u8]) -> usize {
    let mut l = needle.len().saturating_sub(1);
    while l > 0 && !haystack.ends_with(&needle[..l]) {
        l -= 1;
    }
    l
}

/// The first index of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [] => Some(0),
        [b] => haystack.iter().position(|x| x == b),
        [first, rest @ ..] => {
            let last_start = haystack.len().checked_sub(needle.len())?;
            (0..=last_start).find(|&i| haystack[i] == *first && haystack[i + 1..].starts_with(rest))
        }
    }
}

/// One entry of the output queue (asynchat's `producer_fifo`).
enum Outgoing {
    /// Bytes, and how many of them are already sent.
    Data(Vec<u8>, usize),
    /// A producer asked for more when its turn comes.
    Producer(Box<dyn Producer>),
    /// `close_when_done`: close when this is reached.
    Close,
}

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
/// * **No copy when idle.** `push` sends straight from the caller's slice
///   when nothing is queued and queues only what the kernel did not take.
///   A pushed `Vec<u8>` producer is queued as is, not split.
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
    producer_fifo: VecDeque<Outgoing>,
    /// Unsent bytes in the `Data` entries of `producer_fifo`.
    queued: usize,
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
            producer_fifo: VecDeque::new(),
            queued: 0,
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
    /// types is a compile-time error here.
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
        let mut rest = data;
        if self.producer_fifo.is_empty() && self.inner.connected() && self.send_error.is_none() {
            let end = data.len().min(self.ac_out_buffer_size);
            match self.inner.send(&data[..end]) {
                Ok(n) => rest = &data[n..],
                Err(e) => self.send_error = Some(e),
            }
        }
        if !rest.is_empty() {
            self.queued += rest.len();
            self.producer_fifo
                .push_back(Outgoing::Data(rest.to_vec(), 0));
        }
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
        self.producer_fifo
            .push_back(Outgoing::Producer(Box::new(producer)));
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
        // As asynchat: only queued; the next write event reaches it.
        self.producer_fifo.push_back(Outgoing::Close);
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
        self.producer_fifo.clear();
        self.queued = 0;
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
        !self.producer_fifo.is_empty() || self.close_reached || self.send_error.is_some()
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
        self.queued
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
        while self.inner.connected() {
            let obs = self.ac_out_buffer_size;
            let Some(first) = self.producer_fifo.front_mut() else {
                break;
            };
            match first {
                Outgoing::Close => {
                    self.producer_fifo.pop_front();
                    self.close_reached = true;
                    return Ok(());
                }
                Outgoing::Producer(p) => {
                    let data = p.more();
                    if data.is_empty() {
                        self.producer_fifo.pop_front();
                    } else {
                        self.queued += data.len();
                        self.producer_fifo.push_front(Outgoing::Data(data, 0));
                    }
                }
                Outgoing::Data(data, sent) => {
                    if *sent >= data.len() {
                        self.producer_fifo.pop_front();
                        continue;
                    }
                    let end = data.len().min(*sent + obs);
                    let n = self.inner.send(&data[*sent..end])?;
                    *sent += n;
                    self.queued -= n;
                    if *sent >= data.len() {
                        self.producer_fifo.pop_front();
                    }
                    // One send per call: we tried to send actual data.
                    return Ok(());
                }
            }
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

    /// asynchat's `handle_read`: one `recv` of `ac_in_buffer_size` bytes,
    /// then the terminator scan, feeding the handler's hooks.
    fn handle_read_event<H: AsyncChatHandler>(
        &mut self,
        handler: &mut H,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        // The buffer is taken out of `self`, so that slices of it can be
        // handed to the hooks along with `&mut self`; it goes back at the end.
        let old = self.ac_in_len;
        // After a `found_terminator` error, the rest of that read waits here
        // for the next read event (as in asynchat). A handler whose
        // `handle_error` keeps the channel must not let that backlog grow by
        // a read per event: past `max_incoming` (or one read, if larger) it
        // is an `IncomingTooLong` error, as an over-long line is.
        if old > self.max_incoming.max(self.ac_in_buffer_size) {
            self.ac_in_len = 0;
            return Err(self.overflow());
        }
        let mut buf = std::mem::take(&mut self.ac_in_buffer);
        let want = old + self.ac_in_buffer_size;
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let n = match self.inner.recv(&mut buf[old..want]) {
            Ok(n) => n,
            Err(e) => {
                self.ac_in_buffer = buf;
                // A spurious wake-up (another reader got there first):
                // asynchat ignores BlockingIOError.
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(());
                }
                return Err(e);
            }
        };
        let end = old + n;
        self.discarded = false;
        let mut pos = 0;
        let result = self.scan(&buf[..end], &mut pos, handler, cx);
        if self.discarded || self.inner.is_closed() || self.overflowed {
            self.ac_in_len = 0;
        } else {
            // Keep the unprocessed tail (a partial terminator) at the front.
            buf.copy_within(pos..end, 0);
            self.ac_in_len = end - pos;
        }
        self.ac_in_buffer = buf;
        result
    }

    /// The terminator scan over `buf[*pos..]`, advancing `*pos` past what
    /// was handed to the hooks.
    fn scan<H: AsyncChatHandler>(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        handler: &mut H,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        // Loop because one recv may bring several messages; the terminator
        // is read afresh each time since found_terminator may change it.
        while *pos < buf.len() {
            if self.discarded || self.inner.is_closed() {
                return Ok(());
            }
            let rest = &buf[*pos..];
            match &mut self.terminator {
                Terminator::Count(n) if *n > 0 => {
                    let n = *n;
                    if rest.len() < n {
                        *pos = buf.len();
                        handler.collect_incoming_data(self, rest);
                        self.terminator = Terminator::Count(n - rest.len());
                    } else {
                        *pos += n;
                        handler.collect_incoming_data(self, &rest[..n]);
                        self.terminator = Terminator::Count(0);
                        self.collected = 0;
                        handler.found_terminator(self, cx)?;
                    }
                }
                Terminator::Bytes(term) if !term.is_empty() => {
                    let tlen = term.len();
                    if let Some(index) = find(rest, term) {
                        // Found: collect what precedes it (not an empty
                        // string: asynchat skips that), then transition.
                        if index > 0 {
                            self.check_limit(index)?;
                            handler.collect_incoming_data(self, &rest[..index]);
                        }
                        *pos += index + tlen;
                        self.collected = 0;
                        handler.found_terminator(self, cx)?;
                    } else {
                        // Not found: keep a possible partial terminator at
                        // the end for the next read, collect the rest.
                        let keep = find_prefix_at_end(rest, term);
                        let take = rest.len() - keep;
                        if take > 0 {
                            self.check_limit(take)?;
                            *pos += take;
                            handler.collect_incoming_data(self, &rest[..take]);
                        }
                        return Ok(());
                    }
                }
                // None, Count(0), empty bytes: collect it all.
                _ => {
                    *pos = buf.len();
                    handler.collect_incoming_data(self, rest);
                }
            }
        }
        Ok(())
    }

    /// Counts `n` more bytes collected without the byte-string terminator;
    /// over the limit, the error (the caller closes the channel).
    fn check_limit(&mut self, n: usize) -> io::Result<()> {
        let total = self.collected.saturating_add(n);
        if total > self.max_incoming {
            return Err(self.overflow());
        }
        self.collected = total;
        Ok(())
    }

    /// The [`IncomingTooLong`] error; marks the channel for closing.
    fn overflow(&mut self) -> io::Error {
        self.overflowed = true;
        let terminator = match &self.terminator {
            Terminator::Bytes(t) => t.clone(),
            _ => Vec::new(),
        };
        IncomingTooLong {
            limit: self.max_incoming,
            terminator,
        }
        .into()
    }

    /// After a hook: a `close_when_done` was reached, or a `push` failed.
    fn after_hook<H: AsyncChatHandler>(
        &mut self,
        handler: &mut H,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if let Some(err) = self.send_error.take() {
            return Err(err);
        }
        if self.close_reached && !self.inner.is_closed() {
            self.close_reached = false;
            handler.handle_close(self, cx)?;
        }
        Ok(())
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
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    /// asynchat: always readable.
    fn default_readable(&self) -> bool {
        true
    }
    /// asynchat: `producer_fifo or not connected`.
    fn default_writable(&self) -> bool {
        !self.inner.connected() || self.has_output()
    }
    fn default_handle_write(&mut self) -> io::Result<()> {
        self.initiate_send()
    }
    fn close(&mut self) {
        AsyncChat::close(self)
    }
}

impl fmt::Debug for AsyncChat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (async_chat, terminator {}, {} queued)",
            self.inner,
            self.terminator,
            self.producer_fifo.len()
        )
    }
}

/// The events of an [`AsyncChat`] channel: asynchat's two protocol hooks,
/// [`collect_incoming_data`](Self::collect_incoming_data) and
/// [`found_terminator`](Self::found_terminator), plus the `handle_*`
/// methods of a dispatcher with their defaults.
///
/// Reading and writing are done for you: a read event reads
/// `ac_in_buffer_size` bytes and feeds the two hooks; a write event sends
/// the queue. Register a handler with its channel like any other:
/// `map.add(AsyncChat::new(dispatcher), MyHandler)` or `cx.add(...)`
/// (every `AsyncChatHandler` is a [`Handler<AsyncChat>`](Handler)).
///
/// ```
/// use selectloop::{AsyncChat, AsyncChatHandler, Context, Terminator};
/// use std::io;
///
/// /// HTTP-ish: a header line "LEN\r\n", then a body of LEN bytes.
/// struct Framed {
///     bodies: Vec<Vec<u8>>,
///     buf: Vec<u8>,
/// }
///
/// impl AsyncChatHandler for Framed {
///     fn collect_incoming_data(&mut self, _ch: &mut AsyncChat, data: &[u8]) {
///         self.buf.extend_from_slice(data);
///     }
///     fn found_terminator(&mut self, ch: &mut AsyncChat, _cx: &mut Context<'_>) -> io::Result<()> {
///         let data = std::mem::take(&mut self.buf);
///         if let Terminator::Bytes(_) = ch.get_terminator() {
///             let len: usize = String::from_utf8_lossy(&data).trim().parse()
///                 .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad length: {e}")))?;
///             ch.set_terminator(len); // now the body
///         } else {
///             self.bodies.push(data);
///             ch.set_terminator(b"\r\n"); // the next header
///         }
///         Ok(())
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait AsyncChatHandler: Sized + 'static {
    /// Data before the terminator arrived (asynchat's
    /// `collect_incoming_data`); called as often as the reads split it.
    /// Default: accumulate it in the channel, for
    /// [`AsyncChat::take_incoming`] in `found_terminator`.
    fn collect_incoming_data(&mut self, ch: &mut AsyncChat, data: &[u8]) {
        ch.collect(data);
    }

    /// The terminator was found (asynchat's `found_terminator`): the
    /// message collected so far is complete. May change the terminator for
    /// what follows, push a reply, close the channel. An `Err` goes to
    /// `handle_error` (or `handle_close` if it means "peer gone").
    fn found_terminator(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()>;

    /// Asked every iteration: wait for input? Default `true` (asynchat).
    fn readable(&mut self, ch: &AsyncChat) -> bool {
        ch.default_readable()
    }

    /// Asked every iteration: wait to send? Default: output is queued (or
    /// the channel is not connected yet), as asynchat.
    fn writable(&mut self, ch: &AsyncChat) -> bool {
        ch.default_writable()
    }

    /// A non-blocking connect completed. Default: nothing (asynchat's
    /// typical client overrides it with `pass`).
    fn handle_connect(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// Out-of-band data arrived. Default: read and drop the urgent byte,
    /// and log "unhandled incoming priority event" the first time
    /// ([`Dispatcher::discard_urgent_data`]).
    fn handle_expt(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_expt()
    }

    /// The peer closed, the connection broke, or a `close_when_done` was
    /// reached. Default: close the channel.
    fn handle_close(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close();
        Ok(())
    }

    /// A hook failed, or the input went over
    /// [`max_incoming`](AsyncChat::max_incoming) (an [`IncomingTooLong`]
    /// error; the channel is closed after this returns in that case).
    /// Default: log the error with the channel and close it.
    fn handle_error(&mut self, ch: &mut AsyncChat, err: io::Error, cx: &mut Context<'_>) {
        log::error!("{:?}: uncaptured error: {}; closing", ch.dispatcher(), err);
        ch.close();
    }
}

/// Every [`AsyncChatHandler`] is a [`Handler`] of an [`AsyncChat`]: this is
/// what lets `map.add(AsyncChat::new(d), MyHandler)` register it. Reads run
/// asynchat's terminator scan, writes send the queue.
impl<T: AsyncChatHandler> Handler<AsyncChat> for T {
    fn readable(&mut self, ch: &AsyncChat) -> bool {
        AsyncChatHandler::readable(self, ch)
    }
    fn writable(&mut self, ch: &AsyncChat) -> bool {
        AsyncChatHandler::writable(self, ch)
    }
    fn handle_read(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        let result = ch.handle_read_event(self, cx);
        if ch.overflowed {
            ch.overflowed = false;
            if let Err(err) = result {
                AsyncChatHandler::handle_error(self, ch, err, cx);
            }
            ch.close();
            return Ok(());
        }
        result?;
        ch.after_hook(self, cx)
    }
    fn handle_write(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(err) = ch.send_error.take() {
            return Err(err);
        }
        ch.initiate_send()?;
        ch.after_hook(self, cx)
    }
    fn handle_connect(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        AsyncChatHandler::handle_connect(self, ch, cx)?;
        ch.after_hook(self, cx)
    }
    fn handle_expt(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        AsyncChatHandler::handle_expt(self, ch, cx)?;
        ch.after_hook(self, cx)
    }
    fn handle_close(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        AsyncChatHandler::handle_close(self, ch, cx)
    }
    fn handle_error(&mut self, ch: &mut AsyncChat, err: io::Error, cx: &mut Context<'_>) {
        AsyncChatHandler::handle_error(self, ch, err, cx)
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

    #[test]
    fn find_prefix_at_end_cases() {
        assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
        assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
        assert_eq!(find_prefix_at_end(b"", b"\r\n"), 0);
        assert_eq!(find_prefix_at_end(b"abc", b""), 0);
        assert_eq!(find_prefix_at_end(b"abc", b"x"), 0);
        assert_eq!(find_prefix_at_end(b"xqq", b"qqq"), 2);
        assert_eq!(find_prefix_at_end(b"qq", b"qqq"), 2);
        assert_eq!(find_prefix_at_end(b"q", b"qqq"), 1);
        assert_eq!(find_prefix_at_end(b"\r\n\r", b"\r\n\r\n"), 3);
    }

    #[test]
    fn find_matches_naive_search() {
        let hay = b"abcabqqabqqqx";
        for needle in [
            &b"q"[..],
            b"qq",
            b"qqq",
            b"abq",
            b"x",
            b"zz",
            b"abcabqqabqqqxy",
        ] {
            let naive = hay.windows(needle.len()).position(|w| w == needle);
            assert_eq!(find(hay, needle), naive, "{needle:?}");
        }
    }

    #[test]
    fn terminator_display_names_the_bytes() {
        assert_eq!(Terminator::from("\r\n").to_string(), "b\"\\r\\n\"");
        assert_eq!(Terminator::Count(3).to_string(), "3 bytes");
        let e = io::Error::from(IncomingTooLong {
            limit: 5,
            terminator: b"\n".to_vec(),
        });
        assert!(e.to_string().contains("more than 5 bytes"), "{e}");
        assert!(e.to_string().contains("b\"\\n\""), "{e}");
    }
}
