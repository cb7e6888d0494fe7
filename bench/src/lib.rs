//! Shared helpers of selectloop's benchmark binaries: the byte pattern the
//! load generator sends and verifies, the `listening on` line, fd limits.
//!
//! The binaries:
//!
//! * `loadgen`: the load client (pingpong and bulk modes, non-blocking, on mio).
//! * `mio_echo`, `thread_echo`: the peer servers.
//! * `floor_poll`, `floor_select`: the floor servers, minimal echo loops on
//!   poll(2)/select(2) through `selectloop::sys` with no abstraction.
//! * `bench`: the driver that runs them all and writes the table and plot.

use std::fmt::Display;
use std::io::{self, Write};

/// Length of the repeating part of the byte pattern (a prime, so the pattern
/// never lines up with a power-of-two buffer size).
pub const PATTERN_PERIOD: usize = 65_521;

/// The byte stream the load generator sends: byte `i` of connection `c` is
/// `table[(i + 7919 * c) % PATTERN_PERIOD]`, so a misplaced, lost or foreign
/// byte is detected.
#[derive(Debug, Clone)]
pub struct Pattern {
    table: Vec<u8>,
}

impl Pattern {
    /// Builds the table (twice the period, so any window of up to
    /// `PATTERN_PERIOD` bytes is one contiguous slice).
    pub fn new() -> Self {
        let mut x: u32 = 0x9e37_79b9;
        let half: Vec<u8> = (0..PATTERN_PERIOD)
            .map(|_| {
                // xorshift32: cheap, not all-zero, no repeats within the period
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect();
        let mut table = half.clone();
        table.extend_from_slice(&half);
        Pattern { table }
    }

    /// The `len` bytes (at most `PATTERN_PERIOD`) of stream `conn` that
    /// start at byte `offset`.
    pub fn slice(&self, conn: u64, offset: u64, len: usize) -> &[u8] {
        let len = len.min(PATTERN_PERIOD);
        let start = ((offset + 7919 * conn) % PATTERN_PERIOD as u64) as usize;
        &self.table[start..start + len]
    }
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

/// Prints the one stdout line a server owes its caller, flushed.
pub fn announce_listening(addr: impl Display) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// A runtime failure: one line on stderr, exit status 1.
pub fn fail(what: impl Display) -> ! {
    eprintln!("error: {what}");
    std::process::exit(1)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new
/// soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    Ok(hard)
}

/// Size of the servers' read buffer.
pub const READ_BUF: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_windows_are_contiguous_and_streams_differ() {
        let p = Pattern::new();
        let a = p.slice(0, 65_000, 2_000).to_vec();
        let mut b = p.slice(0, 65_000, 521).to_vec();
        b.extend_from_slice(p.slice(0, 65_521, 1_479));
        assert_eq!(a, b);
        assert_ne!(p.slice(0, 0, 64), p.slice(1, 0, 64));
    }
}
