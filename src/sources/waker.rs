//! Waking the loop from other threads: [`Wakeup`] + [`Waker`], and
//! messages: [`MessageChannel`] + [`Sender`].
//!
//! The loop sleeps in select(2)/poll(2) on the fds of its map, so another
//! thread can only wake it by making one of those fds ready. A [`Wakeup`]
//! is such an fd, in the map like any channel (an eventfd on Linux, Android
//! and FreeBSD, a pipe elsewhere: `build.rs` probes for it); its [`Waker`]s
//! (`Send + Sync + Clone`) make it readable from any thread, and the loop
//! then calls [`WakeHandler::handle_wake`] once for all the wake-ups that
//! came since the last pass.
//!
//! A [`MessageChannel<T>`] is the same fd plus a queue: [`Sender::send`]
//! (from any thread, never blocks) appends a message, and the loop calls
//! [`MessageHandler::handle_message`] for each, in the order each sender
//! sent them. Only the send that finds the queue empty writes the wake-up,
//! so a burst of messages costs one wake-up and one read, not one each.
//!
//! ```
//! use selectloop::sources::{message_channel, MessageHandler};
//! use selectloop::{Context, Loop, Map};
//! use std::io;
//!
//! struct Collect {
//!     got: Vec<u32>,
//! }
//!
//! impl MessageHandler<u32> for Collect {
//!     fn handle_message(&mut self, n: u32, cx: &mut Context<'_>) -> io::Result<()> {
//!         self.got.push(n);
//!         if n == 99 {
//!             cx.exit();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let (sender, channel) = message_channel::<u32>()?;
//! let mut map = Map::new();
//! let token = map.add(channel, Collect { got: Vec::new() });
//! let worker = std::thread::spawn(move || {
//!     for n in 0..100 {
//!         sender.send(n).unwrap();
//!     }
//! });
//! Loop::new().timeout(None).run(&mut map)?; // sleeps until messages come
//! worker.join().unwrap();
//! assert_eq!(map.handler_mut(token).unwrap().got, (0..100).collect::<Vec<_>>());
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::dispatcher::Dispatcher;
use crate::handler::{DispatcherType, Handler};
use crate::sys::wake::WakeWriter;
use crate::Context;
use crate::Predicates;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Reads the wake-up fd of `inner` until it would block.
fn drain(inner: &mut Dispatcher) {
    let mut buf = [0u8; 64];
    loop {
        match inner.recv(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                log::debug!("{inner:?}: draining the wake-up fd: {e}");
                break;
            }
        }
    }
    // The write end is held by the wakers/senders' shared state: a read of
    // 0 cannot mean "peer gone" here, and must not close the channel.
    inner.take_close_pending();
}

/// A new wake-up fd and the file dispatcher reading it.
fn wake_channel() -> io::Result<(WakeWriter, Dispatcher)> {
    into_channel(WakeWriter::new()?)
}

fn into_channel(
    (writer, reader): (WakeWriter, std::os::fd::OwnedFd),
) -> io::Result<(WakeWriter, Dispatcher)> {
    let inner = Dispatcher::file_dispatcher(&reader)?;
    Ok((writer, inner))
}

/// The channel a [`Waker`] wakes: put it in the map with a
/// [`WakeHandler`] (`()` if a wake-up only has to make the loop go round,
/// say to look at its `readable()`/`writable()` predicates again).
///
/// ```
/// use selectloop::sources::Wakeup;
/// use selectloop::{Loop, Map};
/// use std::time::{Duration, Instant};
///
/// let wakeup = Wakeup::new()?;
/// let waker = wakeup.waker();
/// let mut map = Map::new();
/// map.add(wakeup, ());
/// let start = Instant::now();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     waker.wake().unwrap();
/// });
/// // One blocking iteration (timeout None): it returns when the thread wakes it.
/// Loop::new().timeout(None).iterate(&mut map)?;
/// assert!(start.elapsed() >= Duration::from_millis(50));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Wakeup {
    inner: Dispatcher,
    writer: Arc<WakeWriter>,
}

impl Wakeup {
    /// A new wake-up channel (an eventfd, or a pipe where there is none).
    pub fn new() -> io::Result<Self> {
        let (writer, inner) = wake_channel()?;
        Ok(Wakeup {
            inner,
            writer: Arc::new(writer),
        })
    }

    /// A [`Waker`] for this channel; make as many as you like (or clone
    /// one).
    pub fn waker(&self) -> Waker {
        Waker {
            writer: Arc::clone(&self.writer),
        }
    }

    /// The fd the loop watches; `None` once closed.
    pub fn fileno(&self) -> Option<RawFd> {
        self.inner.fileno()
    }
}

impl fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.fileno() {
            Some(fd) => write!(f, "<Wakeup fd={fd}>"),
            None => write!(f, "<Wakeup closed>"),
        }
    }
}

/// Wakes a [`Wakeup`] channel's loop from any thread (`Send + Sync +
/// Clone`): mio's `Waker`, calloop's ping.
#[derive(Clone)]
pub struct Waker {
    writer: Arc<WakeWriter>,
}

impl Waker {
    /// Makes the channel readable, so the loop wakes (if it waits) or does
    /// not sleep (if it is about to). Never blocks; wake-ups that come
    /// before the loop looks are one event. Waking a channel that has left
    /// the map does nothing, and is not an error.
    pub fn wake(&self) -> io::Result<()> {
        self.writer.wake()
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker").finish_non_exhaustive()
    }
}

impl DispatcherType for Wakeup {
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    fn default_writable(&self) -> bool {
        false
    }
    fn default_handle_write(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// `waker` in the loop's trace.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("waker")
    }
}

/// What a [`Wakeup`] channel calls.
#[allow(unused_variables)]
pub trait WakeHandler: 'static {
    /// One or more [`Waker::wake`] calls happened since the last pass.
    /// Default: nothing (the wake-up itself made the loop go round).
    fn handle_wake(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// A graceful shutdown started ([`Context::shutdown`]). Default: close
    /// the channel, like every plain channel. Override it to keep being
    /// woken (work still owed by other threads), and close it when done.
    fn handle_shutdown(&mut self, ch: &mut Wakeup, cx: &mut Context<'_>) -> io::Result<()> {
        ch.inner.close();
        Ok(())
    }

    /// `handle_wake` failed. Default (asyncore's rule): log it and close
    /// the channel.
    fn handle_error(&mut self, ch: &mut Wakeup, err: io::Error, cx: &mut Context<'_>) {
        log::error!("{ch:?}: uncaptured error: {err}; closing");
        ch.inner.close();
    }
}

/// The wake-up only makes the loop go round.
impl WakeHandler for () {}

impl<T: WakeHandler> Handler<Wakeup> for T {
    /// Always readable, never writable: the loop need not ask each pass.
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;
    fn readable(&mut self, _ch: &Wakeup) -> bool {
        true
    }
    fn writable(&mut self, _ch: &Wakeup) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut Wakeup, cx: &mut Context<'_>) -> io::Result<()> {
        drain(&mut ch.inner);
        log::trace!("fd {}: wake-up -> handle_wake", ch.fileno().unwrap_or(-1));
        self.handle_wake(cx)
    }
    fn handle_close(&mut self, ch: &mut Wakeup, _cx: &mut Context<'_>) -> io::Result<()> {
        ch.inner.close();
        Ok(())
    }
    fn handle_shutdown(&mut self, ch: &mut Wakeup, cx: &mut Context<'_>) -> io::Result<()> {
        WakeHandler::handle_shutdown(self, ch, cx)
    }
    fn handle_error(&mut self, ch: &mut Wakeup, err: io::Error, cx: &mut Context<'_>) {
        WakeHandler::handle_error(self, ch, err, cx)
    }
}

/// What senders and the receiving channel share.
struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    writer: WakeWriter,
    /// The receiving channel is still there (cleared when it closes).
    open: AtomicBool,
}

impl<T> Shared<T> {
    fn queue(&self) -> MutexGuard<'_, VecDeque<T>> {
        // A sender that panicked while holding the lock left a consistent
        // VecDeque (push_back either happened or not).
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The receiving end of a message channel, a channel of the map: register
/// it with a [`MessageHandler<T>`]. Make it with [`message_channel`] or
/// [`MessageChannel::new`] + [`MessageChannel::sender`].
pub struct MessageChannel<T> {
    inner: Dispatcher,
    shared: Arc<Shared<T>>,
    /// The batch being delivered: swapped with the shared queue (so both
    /// keep their allocation), then emptied into the handler.
    batch: VecDeque<T>,
}

impl<T: Send + 'static> MessageChannel<T> {
    /// A new channel with no sender yet.
    pub fn new() -> io::Result<Self> {
        Self::over(wake_channel()?)
    }

    fn over((writer, inner): (WakeWriter, Dispatcher)) -> io::Result<Self> {
        Ok(MessageChannel {
            inner,
            shared: Arc::new(Shared {
                queue: Mutex::new(VecDeque::new()),
                writer,
                open: AtomicBool::new(true),
            }),
            batch: VecDeque::new(),
        })
    }

    /// A sender for this channel (`Send + Clone`: clone it for each
    /// thread).
    pub fn sender(&self) -> Sender<T> {
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> MessageChannel<T> {
    /// The fd the loop watches; `None` once closed.
    pub fn fileno(&self) -> Option<RawFd> {
        self.inner.fileno()
    }

    /// Messages sent and not yet delivered.
    pub fn pending(&self) -> usize {
        self.batch.len() + self.shared.queue().len()
    }

    /// Closes the channel: senders get [`SendError`] from now on, and the
    /// messages not yet delivered are dropped now, even while senders live
    /// (what they hold, a reply handle or a buffer, is released). The
    /// wake-up fd's write end, which the senders share, goes with the last
    /// sender.
    pub fn close(&mut self) {
        self.shut();
        self.inner.close();
    }

    /// Marks the channel closed and drops what was not delivered. The mark
    /// is set under the queue's lock, which `send` checks it under: a send
    /// either lands before the mark (and is dropped here) or fails.
    fn shut(&mut self) {
        let undelivered = {
            let mut queue = self.shared.queue();
            self.shared.open.store(false, Ordering::SeqCst);
            std::mem::take(&mut *queue)
        };
        // Dropped outside the lock: a message's own Drop may take time.
        drop(undelivered);
        self.batch.clear();
    }
}

impl<T> Drop for MessageChannel<T> {
    fn drop(&mut self) {
        self.shut();
    }
}

impl<T> fmt::Debug for MessageChannel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.fileno() {
            Some(fd) => write!(f, "<MessageChannel fd={fd}, {} pending>", self.batch.len()),
            None => write!(f, "<MessageChannel closed>"),
        }
    }
}

/// A new message channel: the [`Sender`] for other threads, and the
/// receiving [`MessageChannel`] for the map (like `std::sync::mpsc::channel`,
/// with the receiver in the loop).
pub fn message_channel<T: Send + 'static>() -> io::Result<(Sender<T>, MessageChannel<T>)> {
    let channel = MessageChannel::new()?;
    Ok((channel.sender(), channel))
}

/// Sends messages to a [`MessageChannel`] from any thread. Cloning is
/// cheap (one `Arc`).
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Queues `msg` for the loop and wakes it if the queue was empty (the
    /// loop takes the whole queue on each wake-up). Never blocks beyond a
    /// short lock shared with the loop's take of the queue; the queue is
    /// unbounded, so a sender that must not outrun the loop needs its own
    /// limit (or a reply channel).
    ///
    /// Fails, giving the message back, if the receiving channel was closed
    /// or dropped.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let was_empty = {
            let mut queue = self.shared.queue();
            // Under the lock: see `MessageChannel::shut`.
            if !self.shared.open.load(Ordering::SeqCst) {
                drop(queue);
                return Err(SendError(msg));
            }
            let was_empty = queue.is_empty();
            queue.push_back(msg);
            was_empty
        };
        if was_empty {
            if let Err(e) = self.shared.writer.wake() {
                // Only an fd that is no longer an eventfd/pipe could fail;
                // the message is queued and goes with the next wake-up.
                log::warn!("message channel: cannot wake the loop: {e}");
            }
        }
        Ok(())
    }

    /// Whether the receiving channel is gone (a send would fail).
    pub fn is_closed(&self) -> bool {
        !self.shared.open.load(Ordering::SeqCst)
    }
}

/// [`Sender::send`] to a channel that is closed; the message is returned.
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError { .. }")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed message channel")
    }
}

impl<T> Error for SendError<T> {}

impl<T: 'static> DispatcherType for MessageChannel<T> {
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    fn default_writable(&self) -> bool {
        false
    }
    fn default_handle_write(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn close(&mut self) {
        MessageChannel::close(self)
    }
    /// `message channel` in the loop's trace.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("message channel")
    }
}

/// What a [`MessageChannel<T>`] calls, once per message.
#[allow(unused_variables)]
pub trait MessageHandler<T>: 'static {
    /// The next message. Messages of one sender come in the order it sent
    /// them. An `Err` goes to [`handle_error`](Self::handle_error); the
    /// messages after it stay queued for the next pass (unless the channel
    /// is closed).
    fn handle_message(&mut self, msg: T, cx: &mut Context<'_>) -> io::Result<()>;

    /// A graceful shutdown started ([`Context::shutdown`]). Default: close
    /// the channel, like every plain channel (senders then get
    /// [`SendError`]). Override it to keep receiving while replies from
    /// worker threads are still owed, and close it when they are in.
    fn handle_shutdown(
        &mut self,
        ch: &mut MessageChannel<T>,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        ch.close();
        Ok(())
    }

    /// `handle_message` failed. Default (asyncore's rule): log it and close
    /// the channel.
    fn handle_error(&mut self, ch: &mut MessageChannel<T>, err: io::Error, cx: &mut Context<'_>) {
        log::error!("{ch:?}: uncaptured error: {err}; closing");
        ch.close();
    }
}

impl<T: Send + 'static, H: MessageHandler<T>> Handler<MessageChannel<T>> for H {
    /// Always readable, never writable: the loop need not ask each pass.
    const PREDICATES: Predicates = Predicates::AfterOwnEvents;
    fn readable(&mut self, _ch: &MessageChannel<T>) -> bool {
        true
    }
    fn writable(&mut self, _ch: &MessageChannel<T>) -> bool {
        false
    }
    fn handle_read(&mut self, ch: &mut MessageChannel<T>, cx: &mut Context<'_>) -> io::Result<()> {
        // Drain the fd *before* taking the queue: a message queued after
        // the take wrote a fresh wake-up (it found the queue empty), which
        // this drain cannot have eaten.
        drain(&mut ch.inner);
        {
            let mut queue = ch.shared.queue();
            if ch.batch.is_empty() {
                std::mem::swap(&mut *queue, &mut ch.batch);
            } else {
                ch.batch.append(&mut queue);
            }
        }
        log::trace!(
            "fd {}: {} message(s) -> handle_message",
            ch.fileno().unwrap_or(-1),
            ch.batch.len()
        );
        let mut result = Ok(());
        while let Some(msg) = ch.batch.pop_front() {
            result = self.handle_message(msg, cx);
            if result.is_err() || cx.stopping() || ch.inner.is_closed() {
                break;
            }
        }
        if !ch.batch.is_empty() && !ch.inner.is_closed() {
            // Cut short: the rest comes in the next pass.
            let _ = ch.shared.writer.wake();
        }
        result
    }
    fn handle_close(
        &mut self,
        ch: &mut MessageChannel<T>,
        _cx: &mut Context<'_>,
    ) -> io::Result<()> {
        ch.close();
        Ok(())
    }
    fn handle_shutdown(
        &mut self,
        ch: &mut MessageChannel<T>,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        MessageHandler::handle_shutdown(self, ch, cx)
    }
    fn handle_error(&mut self, ch: &mut MessageChannel<T>, err: io::Error, cx: &mut Context<'_>) {
        MessageHandler::handle_error(self, ch, err, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Loop, Map};
    use std::thread;

    struct Collect(Vec<(usize, u32)>, usize);

    impl MessageHandler<(usize, u32)> for Collect {
        fn handle_message(&mut self, msg: (usize, u32), cx: &mut Context<'_>) -> io::Result<()> {
            self.0.push(msg);
            if self.0.len() == self.1 {
                cx.exit();
            }
            Ok(())
        }
    }

    /// 100 sends into an empty queue write one wake-up, not 100: the
    /// eventfd counter reads 1, the pipe holds one byte.
    #[test]
    fn one_wake_up_per_batch_not_per_message() {
        let pipe = into_channel(WakeWriter::pipe().unwrap()).unwrap();
        #[cfg(selectloop_has_eventfd)]
        let flavours = [pipe, into_channel(WakeWriter::eventfd().unwrap()).unwrap()];
        #[cfg(not(selectloop_has_eventfd))]
        let flavours = [pipe];
        for pair in flavours {
            let mut channel = MessageChannel::<u32>::over(pair).unwrap();
            let kind = channel.shared.writer.kind();
            let sender = channel.sender();
            for n in 0..100 {
                sender.send(n).unwrap();
            }
            let mut buf = [0u8; 64];
            let got = channel.inner.recv(&mut buf).unwrap();
            let wakes = match kind {
                #[cfg(selectloop_has_eventfd)]
                crate::sys::wake::WakeKind::EventFd => {
                    u64::from_ne_bytes(buf[..8].try_into().unwrap())
                }
                crate::sys::wake::WakeKind::Pipe => got as u64,
            };
            assert_eq!(wakes, 1, "{kind:?}");
            assert_eq!(channel.pending(), 100);
        }
    }

    /// The pipe-backed channel works as the eventfd one does (on Linux
    /// the pipe path is otherwise unused): 2 threads x 5,000 messages
    /// through a blocking loop, in per-sender order, on both backends.
    #[test]
    fn pipe_backed_channel_delivers_every_message_in_order() {
        for use_poll in [false, true] {
            let channel =
                MessageChannel::over(into_channel(WakeWriter::pipe().unwrap()).unwrap()).unwrap();
            assert_eq!(
                channel.shared.writer.kind(),
                crate::sys::wake::WakeKind::Pipe
            );
            let sender = channel.sender();
            let mut map = Map::new();
            let token = map.add(channel, Collect(Vec::new(), 10_000));
            let threads: Vec<_> = (0..2)
                .map(|t| {
                    let sender = sender.clone();
                    thread::spawn(move || {
                        for i in 0..5_000 {
                            sender.send((t, i)).unwrap();
                        }
                    })
                })
                .collect();
            Loop::new()
                .timeout(None)
                .use_poll(use_poll)
                .run(&mut map)
                .unwrap();
            for t in threads {
                t.join().unwrap();
            }
            let got = &map.handler_mut(token).unwrap().0;
            for t in 0..2 {
                let mine: Vec<u32> = got.iter().filter(|m| m.0 == t).map(|m| m.1).collect();
                assert_eq!(mine, (0..5_000).collect::<Vec<_>>());
            }
        }
    }
}
