//! Producers: asynchat's way of queueing output that is made (or read)
//! piece by piece, only when the socket can take it.
//!
//! [`AsyncChat::push_with_producer`](crate::AsyncChat::push_with_producer)
//! queues a [`Producer`]; when its turn comes, the channel calls
//! [`more`](Producer::more) each time it needs data, until `more` returns
//! an empty buffer. A big file sent through a producer is never in memory
//! all at once.

/// A source of output for [`AsyncChat`](crate::AsyncChat) (asynchat's
/// "producer" protocol: an object with a `more()` method).
///
/// ```
/// use selectloop::Producer;
///
/// /// Counts down: "3\r\n", "2\r\n", "1\r\n", then nothing.
/// struct Countdown(u32);
///
/// impl Producer for Countdown {
///     fn more(&mut self) -> Vec<u8> {
///         if self.0 == 0 {
///             return Vec::new(); // exhausted
///         }
///         self.0 -= 1;
///         format!("{}\r\n", self.0 + 1).into_bytes()
///     }
/// }
///
/// let mut p = Countdown(2);
/// assert_eq!(p.more(), b"2\r\n");
/// assert_eq!(p.more(), b"1\r\n");
/// assert!(p.more().is_empty());
/// ```
pub trait Producer: 'static {
    /// The next piece of output; an empty buffer means the producer is
    /// exhausted and is dropped from the queue. A piece larger than the
    /// channel's `ac_out_buffer_size` is sent in slices of that size.
    fn more(&mut self) -> Vec<u8>;
}

/// asynchat's `simple_producer`: yields a buffer in pieces of at most
/// `buffer_size` bytes (512 unless told otherwise).
///
/// ```
/// use selectloop::{Producer, SimpleProducer};
///
/// let mut p = SimpleProducer::with_buffer_size(b"hello world".to_vec(), 4);
/// assert_eq!(p.more(), b"hell");
/// assert_eq!(p.more(), b"o wo");
/// assert_eq!(p.more(), b"rld");
/// assert!(p.more().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct SimpleProducer {
    data: Vec<u8>,
    /// Bytes of `data` already handed out.
    pos: usize,
    buffer_size: usize,
}

impl SimpleProducer {
    /// asynchat's default piece size.
    pub const DEFAULT_BUFFER_SIZE: usize = 512;

    /// A producer yielding `data` in pieces of
    /// [`DEFAULT_BUFFER_SIZE`](Self::DEFAULT_BUFFER_SIZE) bytes.
    ///
    /// ```
    /// use selectloop::{Producer, SimpleProducer};
    /// let mut p = SimpleProducer::new(vec![b'x'; 600]);
    /// assert_eq!(p.more().len(), 512);
    /// assert_eq!(p.more().len(), 88);
    /// ```
    pub fn new(data: impl Into<Vec<u8>>) -> Self {
        Self::with_buffer_size(data, Self::DEFAULT_BUFFER_SIZE)
    }

    /// A producer yielding `data` in pieces of `buffer_size` bytes. A size
    /// of 0 is taken as 1 (a 0-byte piece would end the producer at once).
    ///
    /// ```
    /// use selectloop::{Producer, SimpleProducer};
    /// let mut p = SimpleProducer::with_buffer_size("abc", 2);
    /// assert_eq!(p.more(), b"ab");
    /// assert_eq!(p.buffer_size(), 2);
    /// ```
    pub fn with_buffer_size(data: impl Into<Vec<u8>>, buffer_size: usize) -> Self {
        SimpleProducer {
            data: data.into(),
            pos: 0,
            buffer_size: buffer_size.max(1),
        }
    }

    /// The size of the pieces.
    pub fn buffer_size(&self) -> usize {
        self.buffer_size
    }

    /// Bytes not yet handed out.
    ///
    /// ```
    /// use selectloop::{Producer, SimpleProducer};
    /// let mut p = SimpleProducer::with_buffer_size("abc", 2);
    /// p.more();
    /// assert_eq!(p.remaining(), 1);
    /// ```
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

impl Producer for SimpleProducer {
    fn more(&mut self) -> Vec<u8> {
        if self.pos == 0 && self.data.len() <= self.buffer_size {
            // The last (or only) piece: hand over the buffer itself.
            return std::mem::take(&mut self.data);
        }
        let end = self.data.len().min(self.pos + self.buffer_size);
        let piece = self.data[self.pos..end].to_vec();
        self.pos = end;
        if self.pos == self.data.len() {
            self.data = Vec::new();
            self.pos = 0;
        }
        piece
    }
}

/// A byte buffer is a producer that yields itself once, as asynchat's
/// `push_with_producer(b"...")` accepts plain bytes (the "string producer").
/// No copy: the buffer itself is queued.
///
/// ```
/// use selectloop::Producer;
/// let mut p = b"hi".to_vec();
/// assert_eq!(p.more(), b"hi");
/// assert!(p.more().is_empty());
/// ```
impl Producer for Vec<u8> {
    fn more(&mut self) -> Vec<u8> {
        std::mem::take(self)
    }
}

/// A string yields its UTF-8 bytes once.
impl Producer for String {
    fn more(&mut self) -> Vec<u8> {
        std::mem::take(self).into_bytes()
    }
}

/// A static byte string yields itself once.
impl Producer for &'static [u8] {
    fn more(&mut self) -> Vec<u8> {
        std::mem::take(self).to_vec()
    }
}

/// A static string yields its UTF-8 bytes once.
impl Producer for &'static str {
    fn more(&mut self) -> Vec<u8> {
        std::mem::take(self).as_bytes().to_vec()
    }
}

/// A boxed producer is a producer.
impl Producer for Box<dyn Producer> {
    fn more(&mut self) -> Vec<u8> {
        (**self).more()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_producer_yields_exact_pieces_then_empty() {
        let data: Vec<u8> = (0..=255u8).collect();
        for size in [1, 7, 255, 256, 1000] {
            let mut p = SimpleProducer::with_buffer_size(data.clone(), size);
            let mut all = Vec::new();
            loop {
                let piece = p.more();
                if piece.is_empty() {
                    break;
                }
                assert!(piece.len() <= size);
                all.extend_from_slice(&piece);
            }
            assert_eq!(all, data, "size {size}");
            assert!(p.more().is_empty());
        }
    }

    #[test]
    fn zero_buffer_size_is_one() {
        let mut p = SimpleProducer::with_buffer_size("ab", 0);
        assert_eq!(p.more(), b"a");
        assert_eq!(p.more(), b"b");
        assert!(p.more().is_empty());
    }

    #[test]
    fn static_producers_yield_once() {
        let mut s: &'static str = "x";
        assert_eq!(s.more(), b"x");
        assert!(s.more().is_empty());
        let mut b: &'static [u8] = b"y";
        assert_eq!(b.more(), b"y");
        assert!(b.more().is_empty());
        let mut st = String::from("z");
        assert_eq!(st.more(), b"z");
        assert!(st.more().is_empty());
    }
}
