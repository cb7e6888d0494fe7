//! `dispatcher_with_send`: a dispatcher with buffered output, for simple
//! clients and servers (the echo server of the seed articles).

use crate::dispatcher::{CloseReason, Dispatcher};
use crate::handler::DispatcherType;
use crate::output_queue::OutputQueue;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// asyncore sends the output buffer in slices of this many bytes.
pub const SEND_SLICE: usize = 65536;

/// The default limit of queued output: 256 KiB of heap.
pub const DEFAULT_OUTPUT_LIMIT: usize = 256 * 1024;

/// A [`Dispatcher`] whose [`send`](Self::send) queues what the kernel does
/// not take at once, and sends the rest when the socket is writable
/// (asyncore's `dispatcher_with_send`).
///
/// Differences from asyncore, on purpose:
///
/// * **Bounded output.** The queue has a limit in bytes of heap really
///   held ([`DEFAULT_OUTPUT_LIMIT`], changed with
///   [`with_output_limit`](Self::with_output_limit)); small sends are
///   coalesced into shared buffers, so many small sends cost about their
///   payload, not an allocation each. While it
///   is at or over the limit, [`is_full`](Self::is_full) is `true` and the
///   default `readable()` is `false`: a peer that sends without reading stops
///   being read, so its echo cannot grow the server's memory without bound
///   (TCP flow control then slows the peer). A `send` while full is refused
///   with an error and queues nothing; a `send` while not yet full is taken
///   whole, so the queue holds at most the limit plus one `send`'s data.
///   Data sent before the connection is up (or after it closed) is queued
///   too: it goes out after `handle_connect` (or is dropped with the
///   channel).
/// * **Closing loses no data.** `close_when_done` (and the delivery after
///   a half-close) ends with a [lingering close](Dispatcher::linger_close):
///   the peer never gets a reset that destroys the tail it has not read.
/// * **Half-close delivers the queue.** When the peer shuts down its write
///   side (a read of 0 bytes) while output is queued, the default
///   `handle_close` delivers it, then closes
///   ([`close_after_eof`](Self::close_after_eof)); asyncore closed at once
///   and dropped it. Meanwhile the default `readable()` is `false`.
/// * **No copy when idle.** If nothing is queued, `send` writes straight from
///   the caller's buffer and queues only the part the kernel did not take.
/// * **Connecting is fine.** Data sent before the connection is established
///   is queued and goes out after `handle_connect`.
///
/// It dereferences to [`Dispatcher`], so `recv`, `connected()` and the rest
/// are there as on a plain dispatcher.
pub struct DispatcherWithSend {
    inner: Dispatcher,
    out: OutputQueue,
    limit: usize,
    close_when_done: bool,
}

impl DispatcherWithSend {
    /// Wraps a dispatcher (for example `Dispatcher::from_socket(sock)?`).
    pub fn new(inner: Dispatcher) -> Self {
        DispatcherWithSend {
            inner,
            out: OutputQueue::default(),
            limit: DEFAULT_OUTPUT_LIMIT,
            close_when_done: false,
        }
    }

    /// Sets the output limit in bytes of heap (at least 1).
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.limit = limit.max(1);
        self
    }

    /// The output limit in bytes of heap.
    pub fn output_limit(&self) -> usize {
        self.limit
    }

    /// Bytes queued and not yet sent.
    #[inline]
    pub fn pending(&self) -> usize {
        self.out.pending()
    }

    /// Bytes of heap the output queue holds (its buffers' capacity, at
    /// least [`pending`](Self::pending)): what the limit is compared with.
    pub fn queued_heap(&self) -> usize {
        self.out.heap_bytes()
    }

    /// Whether the queue holds its limit or more in heap: stop producing
    /// output (the default `readable()` is `false` meanwhile).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.out.heap_bytes() >= self.limit
    }

    /// Queues `data` and sends what the socket takes now (asyncore's
    /// `dispatcher_with_send.send`). Returns `Ok(data.len())`: every byte is
    /// either sent or queued.
    ///
    /// Refused with an error (kind `OutOfMemory`), queueing nothing, if the
    /// queue is already full: the caller still has the data. Refused too
    /// (`EDESTADDRREQ`, as the kernel says) on a datagram socket with no
    /// peer and no `connect` under way: it has nowhere to send to (use
    /// [`Dispatcher::sendto`]), and queued data would wait for good.
    #[inline]
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.is_full() {
            return Err(self.full_error());
        }
        let mut rest = data;
        if self.out.is_empty() && self.inner.connected() {
            let n = self.inner.send(&data[..data.len().min(SEND_SLICE)])?;
            rest = &data[n..];
        } else if self.inner.is_datagram_without_peer() {
            return Err(io::Error::from_raw_os_error(libc::EDESTADDRREQ));
        }
        if !rest.is_empty() {
            self.out.push_bytes(rest);
        }
        Ok(data.len())
    }

    /// The error of a `send` refused because the queue is full.
    #[cold]
    fn full_error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "output buffer full ({} bytes of heap queued, limit {}); wait until is_full() is false",
                self.queued_heap(),
                self.limit
            ),
        )
    }

    /// Sends queued output, one slice of at most [`SEND_SLICE`] bytes
    /// (asyncore's `initiate_send`); closes the channel once the queue is
    /// empty if [`close_when_done`](Self::close_when_done) was called.
    pub fn initiate_send(&mut self) -> io::Result<()> {
        if self.inner.connected() {
            let inner = &mut self.inner;
            self.out.send_next(SEND_SLICE, |b| inner.send(b))?;
        }
        if self.close_when_done && self.out.is_empty() {
            self.close_when_done = false;
            self.inner.linger_close();
        }
        Ok(())
    }

    /// What the default `handle_close` does: if the peer only shut down its
    /// write side (`recv` read 0 bytes: [`CloseReason::Eof`]) and output is
    /// still queued, deliver it and then close
    /// ([`close_when_done`](Self::close_when_done)); otherwise close now.
    /// A handler that overrides `handle_close` and still wants the queue
    /// delivered calls this instead of [`close`](Self::close).
    ///
    /// asyncore closed at once and dropped the queue: a client that sent its
    /// request and shut down its write side (`nc -N`, HTTP/1.0) lost the
    /// end of the answer.
    pub fn close_after_eof(&mut self) {
        if self.inner.close_reason() != Some(CloseReason::Eof) || !self.inner.connected() {
            self.close();
        } else if self.pending() > 0 {
            self.close_when_done();
        } else {
            self.inner.linger_close();
        }
    }

    /// Closes the channel once everything queued has been sent.
    pub fn close_when_done(&mut self) {
        self.close_when_done = true;
    }

    /// Drops queued output.
    pub fn discard_buffers(&mut self) {
        self.out.clear();
    }

    /// Closes the channel now; queued output is dropped.
    pub fn close(&mut self) {
        self.discard_buffers();
        self.inner.close();
    }
}

impl Deref for DispatcherWithSend {
    type Target = Dispatcher;
    fn deref(&self) -> &Dispatcher {
        &self.inner
    }
}

impl DerefMut for DispatcherWithSend {
    fn deref_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
}

impl DispatcherType for DispatcherWithSend {
    #[inline]
    fn dispatcher(&self) -> &Dispatcher {
        &self.inner
    }
    #[inline]
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        &mut self.inner
    }
    /// Read only while the output queue has room (backpressure).
    #[inline]
    fn default_readable(&self) -> bool {
        self.inner.is_lingering()
            || (!self.is_full() && !self.inner.unhandled_read() && !self.inner.read_ended())
    }
    /// asyncore: `(not self.connected) or len(self.out_buffer)`, except
    /// for a datagram socket that is not connected: it is always writable
    /// and has nothing to send (asyncore spins on it).
    #[inline]
    fn default_writable(&self) -> bool {
        !self.inner.is_lingering()
            && ((!self.inner.connected() && !self.inner.is_datagram_without_peer())
                || self.pending() > 0
                || self.close_when_done)
    }
    /// Sends queued output.
    fn default_handle_write(&mut self) -> io::Result<()> {
        self.initiate_send()
    }
    /// The peer half-closed with output still queued: deliver it, then
    /// close. Otherwise close now.
    fn default_handle_close(&mut self) -> io::Result<()> {
        self.close_after_eof();
        Ok(())
    }
    /// Delivers the queue, then closes.
    fn default_handle_shutdown(&mut self) -> io::Result<()> {
        self.close_when_done();
        Ok(())
    }
    fn close(&mut self) {
        DispatcherWithSend::close(self)
    }
}

/// The fd, or `-1` once closed.
impl AsRawFd for DispatcherWithSend {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

/// The socket's fd (see [`Dispatcher`]'s `AsFd`: panics once closed).
impl AsFd for DispatcherWithSend {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

/// `read` is the socket's [`recv`](Dispatcher::recv).
impl io::Read for DispatcherWithSend {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.recv(buf)
    }
}

/// `write` queues, as [`send`](DispatcherWithSend::send) does: all of
/// `buf` is taken (sent or queued), or, while the queue is full, nothing
/// and an error of kind `WouldBlock` (write again once `is_full()` is
/// false). `flush` does nothing: the loop sends the queue.
impl io::Write for DispatcherWithSend {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.is_full() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for DispatcherWithSend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({} bytes queued)", self.inner, self.pending())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    /// Interleaved partial sends, queueing and compaction keep every byte,
    /// in order.
    #[test]
    fn queued_output_keeps_its_order_through_partial_sends() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let mut ch = DispatcherWithSend::new(Dispatcher::from_socket(a).unwrap())
            .with_output_limit(64 * 1024 * 1024);
        let mut expected = Vec::new();
        let mut received = Vec::new();
        let mut buf = vec![0u8; 7000];
        for round in 0..200u32 {
            let chunk: Vec<u8> = (0..9001u32)
                .map(|i| (i.wrapping_mul(31) ^ round) as u8)
                .collect();
            ch.send(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
            // The peer reads less than was sent: the queue fills, drains
            // part-way, and is compacted while more is appended.
            if let Ok(n) = b.read(&mut buf) {
                received.extend_from_slice(&buf[..n]);
            }
            ch.initiate_send().unwrap();
        }
        while received.len() < expected.len() {
            ch.initiate_send().unwrap();
            match b.read(&mut buf) {
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ch.pending(), 0);
        assert!(received == expected, "bytes reordered or lost");
    }
}
