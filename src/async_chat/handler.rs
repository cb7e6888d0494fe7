//! [`AsyncChatHandler`]: asynchat's protocol hooks, and the
//! [`Handler`] every one of them is.

use super::AsyncChat;
use crate::channel::Predicates;
use crate::event_loop::Context;
use crate::handler::{DispatcherType, Handler};
use std::io;

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
    /// When the loop asks [`readable`](Self::readable) and
    /// [`writable`](Self::writable) (see [`Handler::PREDICATES`]): every
    /// iteration unless overridden.
    const PREDICATES: Predicates = Predicates::EveryIteration;

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

    /// Asked every iteration: wait for input? Default: while the output is
    /// under its limit and the peer has not ended (asynchat: always).
    ///
    /// Whatever it answers, the channel is not watched for input while a
    /// read waits for the output to drain below its limit (a read event
    /// then reads nothing, so watching would wake the loop at once, every
    /// pass, until the peer reads).
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
    /// ([`Dispatcher::discard_urgent_data`](crate::Dispatcher::discard_urgent_data)).
    fn handle_expt(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_expt()
    }

    /// The peer closed, the connection broke, or a `close_when_done` was
    /// reached. Default: if the peer only shut down its write side (a read
    /// of 0 bytes) while output is still queued, deliver it and then close
    /// ([`AsyncChat::close_after_eof`]); otherwise close the channel.
    fn handle_close(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        ch.close_after_eof();
        Ok(())
    }

    /// The channel's deadline passed ([`Dispatcher::set_timeout`](crate::Dispatcher::set_timeout)
    /// on the channel: an idle timeout pushed back on every read). Default:
    /// what [`Handler::handle_timeout`] does for an `AsyncChat`.
    fn handle_timeout(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_timeout()
    }

    /// The loop is shutting down gracefully ([`Context::shutdown`]).
    /// Default: deliver what is queued, then close (`close_when_done`).
    /// Override it to finish a reply still owed first.
    fn handle_shutdown(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_shutdown()
    }

    /// A hook failed, or the input went over
    /// [`max_incoming`](AsyncChat::max_incoming) (an [`IncomingTooLong`](crate::IncomingTooLong)
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
    const PREDICATES: Predicates = T::PREDICATES;
    fn readable(&mut self, ch: &AsyncChat) -> bool {
        AsyncChatHandler::readable(self, ch) && !ch.input_waits_for_output()
    }
    fn writable(&mut self, ch: &AsyncChat) -> bool {
        AsyncChatHandler::writable(self, ch)
    }
    fn handle_read(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        if ch.is_lingering() {
            // Closing: the peer's input is dropped, not handed to the hooks.
            ch.dispatcher_mut().linger_drain();
            return Ok(());
        }
        let result = ch.handle_read_event(self, cx);
        settle_input(self, ch, result, cx)
    }
    fn handle_write(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(err) = ch.send_error.take() {
            return Err(err);
        }
        ch.initiate_send()?;
        if ch.input_paused && !ch.is_full() && !ch.is_closed() {
            // The queue drained below its limit: the rest of the read that
            // was paused is handled now (it may not be followed by more
            // input to wake a read).
            let result = ch.resume_input(self, cx);
            return settle_input(self, ch, result, cx);
        }
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
    fn handle_timeout(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        AsyncChatHandler::handle_timeout(self, ch, cx)?;
        ch.after_hook(self, cx)
    }
    fn handle_shutdown(&mut self, ch: &mut AsyncChat, cx: &mut Context<'_>) -> io::Result<()> {
        AsyncChatHandler::handle_shutdown(self, ch, cx)?;
        ch.after_hook(self, cx)
    }
    fn handle_error(&mut self, ch: &mut AsyncChat, err: io::Error, cx: &mut Context<'_>) {
        AsyncChatHandler::handle_error(self, ch, err, cx)
    }
}

/// After the input scan: an over-long message closes the channel (after
/// `handle_error`); otherwise a reached `close_when_done` or a failed
/// `push` is dealt with.
fn settle_input<T: AsyncChatHandler>(
    handler: &mut T,
    ch: &mut AsyncChat,
    result: io::Result<()>,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    if ch.overflowed {
        ch.overflowed = false;
        if let Err(err) = result {
            AsyncChatHandler::handle_error(handler, ch, err, cx);
        }
        ch.close();
        return Ok(());
    }
    result?;
    ch.after_hook(handler, cx)
}
