//! The input side of [`AsyncChat`]: one `recv`, then the terminator scan
//! that feeds `collect_incoming_data` and `found_terminator`.

use super::terminator::{find, find_prefix_at_end, IncomingTooLong, Terminator};
use super::{AsyncChat, AsyncChatHandler};
use crate::event_loop::Context;
use std::io;

impl AsyncChat {
    /// Whether a read event would read nothing: the output went over its
    /// limit during an earlier read, whose rest waits for it to drain.
    #[inline]
    pub(super) fn input_waits_for_output(&self) -> bool {
        self.input_paused && self.is_full()
    }

    /// asynchat's `handle_read`: one `recv` of `ac_in_buffer_size` bytes,
    /// then the terminator scan, feeding the handler's hooks.
    pub(super) fn handle_read_event<H: AsyncChatHandler>(
        &mut self,
        handler: &mut H,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        if self.input_paused {
            // The output went over its limit during an earlier read, whose
            // rest still waits: handle it first, and read nothing more
            // while the output is still over.
            if self.input_waits_for_output() {
                return Ok(());
            }
            self.resume_input(handler, cx)?;
            if self.input_paused || self.inner.is_closed() {
                return Ok(());
            }
        }
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
        self.scan_buffer(buf, old + n, handler, cx)
    }

    /// Handles the rest of a read that waited while the output was over
    /// its limit (the loop calls it once the queue has drained below).
    pub(super) fn resume_input<H: AsyncChatHandler>(
        &mut self,
        handler: &mut H,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        self.input_paused = false;
        let buf = std::mem::take(&mut self.ac_in_buffer);
        let end = self.ac_in_len;
        self.scan_buffer(buf, end, handler, cx)
    }

    /// Scans `buf[..end]` and keeps what was not handled at its front.
    fn scan_buffer<H: AsyncChatHandler>(
        &mut self,
        mut buf: Vec<u8>,
        end: usize,
        handler: &mut H,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        self.discarded = false;
        let mut pos = 0;
        let result = self.scan(&buf[..end], &mut pos, handler, cx);
        if self.discarded || self.inner.is_closed() || self.overflowed {
            self.ac_in_len = 0;
            self.input_paused = false;
        } else {
            // Keep the unprocessed tail (a partial terminator, or the rest
            // of a read paused by a full output queue) at the front.
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
            if self.is_full() {
                // Backpressure: no more replies until the output drains.
                self.input_paused = true;
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
    pub(super) fn after_hook<H: AsyncChatHandler>(
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
