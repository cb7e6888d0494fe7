//! The output queue shared by [`DispatcherWithSend`](crate::DispatcherWithSend)
//! and [`AsyncChat`](crate::AsyncChat): send straight from the caller's
//! buffer when nothing is queued, queue only the tail the kernel did not
//! take, send in slices, and count what it holds in bytes of heap.
//!
//! Small pushes are coalesced into chunks of up to [`CHUNK`] bytes, so a
//! thousand 8-byte lines cost about 8 KiB of heap, not a thousand
//! allocations and queue entries (asynchat's `producer_fifo` paid roughly
//! eight times the payload). A push of a chunk or more is queued as one
//! buffer of its own.

use crate::producer::Producer;
use std::collections::VecDeque;
use std::io;

/// Small pushes are coalesced into buffers of at most this many bytes.
pub(crate) const CHUNK: usize = 64 * 1024;

/// The smallest buffer a coalescing chunk starts with.
const FIRST_CHUNK: usize = 256;

/// One entry of the queue (asynchat's `producer_fifo`).
enum Entry {
    /// Bytes, and how many of them are already sent.
    Data(Vec<u8>, usize),
    /// A producer, asked for more when its turn comes.
    Producer(Box<dyn Producer>),
    /// `close_when_done`: the queue ends here.
    Close,
}

/// What [`OutputQueue::send_next`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Nothing is queued.
    Empty,
    /// One `send` was made; it took this many bytes.
    Bytes(usize),
    /// The `close_when_done` marker was reached (and removed).
    Close,
}

/// A queue of output bytes, producers and close markers.
#[derive(Default)]
pub(crate) struct OutputQueue {
    entries: VecDeque<Entry>,
    /// Unsent bytes in the `Data` entries.
    pending: usize,
    /// Capacity of the `Data` buffers: the heap they really hold.
    buffers: usize,
}

impl OutputQueue {
    /// Unsent bytes queued (producers not yet asked count as 0).
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Bytes of heap the queue holds: its buffers' capacity and its entry
    /// slots. This is what an output limit is compared with.
    #[inline]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buffers + self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Whether anything (bytes, a producer, a close marker) is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Queues a copy of `data`, coalescing it with the last buffer if that
    /// is a small one.
    pub(crate) fn push_bytes(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.pending += data.len();
        if let Some(Entry::Data(last, _)) = self.entries.back_mut() {
            let needed = last.len() + data.len();
            if needed <= CHUNK {
                if last.capacity() < needed {
                    let before = last.capacity();
                    let target = (before * 2).clamp(needed, CHUNK);
                    last.reserve_exact(target - last.len());
                    self.buffers += last.capacity() - before;
                }
                last.extend_from_slice(data);
                return;
            }
        }
        let buf = if data.len() >= CHUNK {
            data.to_vec()
        } else {
            let mut buf = Vec::with_capacity(data.len().max(FIRST_CHUNK));
            buf.extend_from_slice(data);
            buf
        };
        self.buffers += buf.capacity();
        self.entries.push_back(Entry::Data(buf, 0));
    }

    /// Queues a producer.
    pub(crate) fn push_producer(&mut self, producer: Box<dyn Producer>) {
        self.entries.push_back(Entry::Producer(producer));
    }

    /// Queues the `close_when_done` marker.
    pub(crate) fn push_close(&mut self) {
        self.entries.push_back(Entry::Close);
    }

    /// Drops everything queued and gives the memory back.
    pub(crate) fn clear(&mut self) {
        *self = OutputQueue::default();
    }

    /// Makes one `send` of at most `slice` bytes from the front of the
    /// queue, asking producers for more as needed (asynchat's
    /// `initiate_send`); or reports an empty queue or a close marker.
    pub(crate) fn send_next(
        &mut self,
        slice: usize,
        mut send: impl FnMut(&[u8]) -> io::Result<usize>,
    ) -> io::Result<Sent> {
        loop {
            let Some(front) = self.entries.front_mut() else {
                return Ok(Sent::Empty);
            };
            match front {
                Entry::Close => {
                    self.entries.pop_front();
                    return Ok(Sent::Close);
                }
                Entry::Producer(p) => {
                    let data = p.more();
                    if data.is_empty() {
                        self.entries.pop_front();
                    } else {
                        self.pending += data.len();
                        self.buffers += data.capacity();
                        self.entries.push_front(Entry::Data(data, 0));
                    }
                }
                Entry::Data(data, sent) => {
                    if *sent >= data.len() {
                        self.pop_data();
                        continue;
                    }
                    let end = data.len().min(*sent + slice.max(1));
                    let n = send(&data[*sent..end])?;
                    *sent += n;
                    self.pending -= n;
                    if *sent >= data.len() {
                        self.pop_data();
                    }
                    return Ok(Sent::Bytes(n));
                }
            }
        }
    }

    fn pop_data(&mut self) {
        if let Some(Entry::Data(data, _)) = self.entries.pop_front() {
            self.buffers -= data.capacity();
        }
        if self.entries.is_empty() && self.entries.capacity() > 16 {
            self.entries = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends everything queued; returns the bytes and how it ended.
    fn drain(q: &mut OutputQueue, slice: usize) -> (Vec<u8>, Sent) {
        let mut out = Vec::new();
        loop {
            let sent = q
                .send_next(slice, |b| {
                    out.extend_from_slice(b);
                    Ok(b.len())
                })
                .unwrap();
            if !matches!(sent, Sent::Bytes(_)) {
                return (out, sent);
            }
        }
    }

    #[test]
    fn many_small_pushes_cost_about_their_payload() {
        let mut q = OutputQueue::default();
        for _ in 0..100_000 {
            q.push_bytes(b"12345678");
        }
        assert_eq!(q.pending(), 800_000);
        let heap = q.heap_bytes();
        assert!(
            heap < 800_000 * 11 / 10,
            "{heap} bytes of heap for 800000 queued"
        );
        assert_eq!(
            drain(&mut q, 65536),
            (b"12345678".repeat(100_000), Sent::Empty)
        );
        assert!(
            q.heap_bytes() < 1024,
            "{} bytes held once empty",
            q.heap_bytes()
        );
    }

    #[test]
    fn order_is_kept_across_chunks_producers_and_slices() {
        let mut q = OutputQueue::default();
        let mut want = Vec::new();
        for i in 0..500u32 {
            let piece: Vec<u8> = (0..(i * 37 % 3000)).map(|j| (i ^ j) as u8).collect();
            want.extend_from_slice(&piece);
            q.push_bytes(&piece);
        }
        q.push_producer(Box::new(crate::SimpleProducer::new(b"tail".to_vec())));
        want.extend_from_slice(b"tail");
        q.push_close();
        assert_eq!(drain(&mut q, 1000), (want, Sent::Close));
        assert!(q.is_empty() && q.pending() == 0);
    }
}
