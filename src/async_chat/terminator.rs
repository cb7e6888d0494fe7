//! Where a message ends: [`Terminator`], the scan helpers
//! ([`find_prefix_at_end`]) and the error for input that never reaches its
//! terminator ([`IncomingTooLong`]).

use std::error::Error;
use std::fmt;
use std::io;

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
/// [`handle_error`](crate::AsyncChatHandler::handle_error)) when more than
/// [`max_incoming`](crate::AsyncChat::max_incoming) bytes arrive without the
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
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [] => Some(0),
        [b] => haystack.iter().position(|x| x == b),
        [first, rest @ ..] => {
            let last_start = haystack.len().checked_sub(needle.len())?;
            (0..=last_start).find(|&i| haystack[i] == *first && haystack[i + 1..].starts_with(rest))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
