//! The event handlers of asyncore's `dispatcher`, as a trait with default
//! methods: Python's "subclass and override `handle_*`" becomes "implement
//! [`Handler`] and override what you need".

use crate::accept_pause::is_fd_shortage;
use crate::channel::Predicates;
use crate::dispatcher::Dispatcher;
use crate::event_loop::Context;
use socket2::{SockAddr, Socket};
use std::io;

/// The most connections the default
/// [`handle_accept`](Handler::handle_accept) accepts per wake-up, so a
/// flood of connections cannot starve the channels already open.
pub const ACCEPT_BATCH: usize = 64;

/// A dispatcher type a [`Handler`] can be attached to: [`Dispatcher`]
/// itself, or a type built on it such as
/// [`DispatcherWithSend`](crate::DispatcherWithSend). It supplies the
/// defaults that differ between asyncore's dispatcher classes.
pub trait DispatcherType: 'static {
    /// The socket half.
    fn dispatcher(&self) -> &Dispatcher;
    /// The socket half, mutably.
    fn dispatcher_mut(&mut self) -> &mut Dispatcher;
    /// What [`Handler::readable`] returns unless overridden: `true` until
    /// the default `handle_read` ran ([`Dispatcher::unhandled_read`]).
    #[inline]
    fn default_readable(&self) -> bool {
        let d = self.dispatcher();
        d.is_lingering() || !d.unhandled_read()
    }
    /// What [`Handler::writable`] returns unless overridden: `true` (as
    /// asyncore) until the default `handle_write` ran
    /// ([`Dispatcher::unhandled_write`]).
    #[inline]
    fn default_writable(&self) -> bool {
        let d = self.dispatcher();
        !d.is_lingering() && !d.unhandled_write()
    }
    /// What [`Handler::handle_write`] does unless overridden: for a plain
    /// dispatcher, log a warning "unhandled write event" once and stop
    /// asking for write readiness ([`Dispatcher::warn_unhandled_write`]).
    fn default_handle_write(&mut self) -> io::Result<()> {
        self.dispatcher_mut().warn_unhandled_write();
        Ok(())
    }
    /// What [`Handler::handle_expt`] does unless overridden: drop the urgent
    /// byte and warn once per channel
    /// ([`Dispatcher::discard_urgent_data`]).
    fn default_handle_expt(&mut self) -> io::Result<()> {
        self.dispatcher_mut().discard_urgent_data()
    }
    /// What [`Handler::handle_close`] does unless overridden: for a plain
    /// dispatcher, log "unhandled close event" and close. A buffered type
    /// whose peer only shut down its write side delivers its queued output
    /// first.
    fn default_handle_close(&mut self) -> io::Result<()> {
        log::warn!("{:?}: unhandled close event", self.dispatcher());
        self.close();
        Ok(())
    }
    /// What [`Handler::handle_timeout`] does unless overridden: nothing
    /// (the deadline is already cleared, so it does not fire again).
    fn default_handle_timeout(&mut self) -> io::Result<()> {
        log::debug!("{:?}: unhandled timeout event", self.dispatcher());
        Ok(())
    }
    /// What [`Handler::handle_shutdown`] does unless overridden: close at
    /// once. Buffered types ([`DispatcherWithSend`](crate::DispatcherWithSend),
    /// [`AsyncChat`](crate::AsyncChat)) instead deliver what they have
    /// queued, then close (`close_when_done`).
    fn default_handle_shutdown(&mut self) -> io::Result<()> {
        self.close();
        Ok(())
    }
    /// Closes the channel (asyncore's `close`).
    fn close(&mut self) {
        self.dispatcher_mut().close()
    }
    /// What the channel is, for the loop's trace (`fd 4: opened: LABEL`):
    /// `listener 127.0.0.1:8080`, `connection from 127.0.0.1:40112`,
    /// `file`, ... A dispatcher type with a role of its own (a signal
    /// source, a waker) says so.
    fn describe(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.dispatcher().describe(f)
    }
}

impl DispatcherType for Dispatcher {
    #[inline]
    fn dispatcher(&self) -> &Dispatcher {
        self
    }
    #[inline]
    fn dispatcher_mut(&mut self) -> &mut Dispatcher {
        self
    }
}

/// The events of a channel: asyncore's `handle_*` methods and the
/// `readable`/`writable` predicates, with asyncore's defaults.
///
/// Every method is handed the dispatcher (`ch`: the socket and its state)
/// and a [`Context`] (to add channels, close or reach other channels, and end
/// the loop). A method that returns `Err` sends the error to
/// [`handle_close`](Self::handle_close) if it means the peer is gone
/// (`ECONNRESET`, `EPIPE`, ... see [`DISCONNECTED`](crate::DISCONNECTED)),
/// is ignored if it is `WouldBlock`, and goes to
/// [`handle_error`](Self::handle_error) otherwise.
///
/// The type parameter is the dispatcher type the handler is attached to;
/// it defaults to [`Dispatcher`], so `impl Handler for MyServer` is the
/// common case and `impl Handler<DispatcherWithSend> for MyClient` gives
/// buffered output.
///
/// ```
/// use selectloop::{Context, Dispatcher, Handler};
/// use std::io;
///
/// /// asyncore's http_client, minus the connect: reads until the peer closes.
/// struct Printer;
///
/// impl Handler for Printer {
///     fn handle_read(&mut self, ch: &mut Dispatcher, _cx: &mut Context<'_>) -> io::Result<()> {
///         let mut buf = [0u8; 8192];
///         let n = ch.recv(&mut buf)?;
///         print!("{}", String::from_utf8_lossy(&buf[..n]));
///         Ok(())
///     }
///     fn writable(&mut self, _ch: &Dispatcher) -> bool {
///         false
///     }
/// }
/// ```
#[allow(unused_variables)]
pub trait Handler<D: DispatcherType = Dispatcher>: 'static {
    /// When the loop asks [`readable`](Self::readable) and
    /// [`writable`](Self::writable): every iteration (asyncore's rule, the
    /// default), or only after this channel's own events
    /// ([`Predicates::AfterOwnEvents`]: the fast path, for handlers whose
    /// predicates depend only on their own channel, which is true of every
    /// handler that does not override them).
    const PREDICATES: Predicates = Predicates::EveryIteration;

    /// Asked every loop iteration: should the loop wait for this channel to
    /// become readable? Default: `true` (per dispatcher type: a
    /// [`DispatcherWithSend`](crate::DispatcherWithSend) whose queue is full
    /// says `false`), and `false` once the default `handle_read` has run.
    fn readable(&mut self, ch: &D) -> bool {
        ch.default_readable()
    }

    /// Asked every loop iteration: should the loop wait for this channel to
    /// become writable? Default: `true` for a plain dispatcher until its
    /// default `handle_write` has run once (then `false`: asyncore's
    /// default asked again on every pass, a spin), "has queued output" for
    /// [`DispatcherWithSend`](crate::DispatcherWithSend). A listening socket
    /// is never put in the write set, and a connecting one always is.
    fn writable(&mut self, ch: &D) -> bool {
        ch.default_writable()
    }

    /// The socket has data to read, or the peer closed (then `recv` returns
    /// 0 and `handle_close` follows). Default: log "unhandled read event"
    /// once and stop asking for read readiness
    /// ([`Dispatcher::warn_unhandled_read`]).
    fn handle_read(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        ch.dispatcher_mut().warn_unhandled_read();
        Ok(())
    }

    /// The socket can be written. Default: log "unhandled write event" for a
    /// plain dispatcher, once, after which the default `writable()` is
    /// `false`; send queued output for `DispatcherWithSend`.
    fn handle_write(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_write()
    }

    /// A non-blocking connect completed (called once, before the first
    /// `handle_read` or `handle_write`). Default: log "unhandled connect
    /// event".
    fn handle_connect(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        log::warn!("{:?}: unhandled connect event", ch.dispatcher());
        Ok(())
    }

    /// A listening socket has connections waiting. Default: accept what is
    /// waiting, up to [`ACCEPT_BATCH`] connections per wake-up, passing
    /// each to [`handle_accepted`](Self::handle_accepted) (asyncore 3.2+);
    /// nothing happens if there is none after all.
    ///
    /// asyncore accepts one connection per pass, so a burst overflows a
    /// small backlog (the kernel then drops or resets connections) while
    /// the loop serves everything else between two accepts. An fd shortage
    /// anywhere in setting up a connection, `accept` itself or
    /// `handle_accepted` failing with `EMFILE`, `ENFILE`, `ENOBUFS` or
    /// `ENOMEM`, pauses accepting
    /// ([`Dispatcher::pause_accepting`]) instead of closing the listener
    /// or retrying at once.
    fn handle_accept(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        for _ in 0..ACCEPT_BATCH {
            let Some((sock, addr)) = ch.dispatcher_mut().accept()? else {
                return Ok(());
            };
            if let Err(err) = self.handle_accepted(ch, sock, addr, cx) {
                if is_fd_shortage(&err) {
                    ch.dispatcher_mut().pause_accepting_for(&err);
                    return Ok(());
                }
                return Err(err);
            }
            let d = ch.dispatcher();
            if d.is_closed() || !d.accepting() || d.is_accept_paused() || cx.stopping() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A connection was accepted; `sock` is the new connection and `addr`
    /// the peer. Typically: `cx.add(Dispatcher::from_socket(sock)?, MyHandler)`.
    /// Default: log "unhandled accepted event" and close `sock`.
    fn handle_accepted(
        &mut self,
        ch: &mut D,
        sock: Socket,
        addr: SockAddr,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        log::warn!("{:?}: unhandled accepted event", ch.dispatcher());
        drop(sock);
        Ok(())
    }

    /// Out-of-band data arrived (the except set of select, `POLLPRI` of
    /// poll). Rare. Default: read and drop the urgent byte, and log
    /// "unhandled incoming priority event" the first time
    /// ([`Dispatcher::discard_urgent_data`]). asyncore only logs, and the
    /// condition, still there, is reported again on every pass: a spin.
    fn handle_expt(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_expt()
    }

    /// The peer closed or the connection broke. Default: for a plain
    /// dispatcher, log "unhandled close event" and close the channel. For a
    /// [`DispatcherWithSend`](crate::DispatcherWithSend) whose peer only
    /// shut down its write side (a read of 0 bytes) while output is still
    /// queued: deliver the queue, then close (asyncore closed at once and
    /// dropped it); otherwise close quietly.
    fn handle_close(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_close()
    }

    /// The channel's deadline passed (set with
    /// [`Dispatcher::set_deadline`], [`set_timeout`](Dispatcher::set_timeout)
    /// or [`set_interval`](Dispatcher::set_interval); a
    /// [`Timer`](crate::Timer) is a channel with only a deadline). The
    /// deadline is cleared (or, for an interval, moved to the next period)
    /// before this runs. Not in asyncore, whose users bolted `sched` onto
    /// `loop(count=1)`. Default: nothing.
    ///
    /// Not called for the deadline of a [lingering
    /// close](Dispatcher::linger_close): the loop closes the channel then.
    fn handle_timeout(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_timeout()
    }

    /// The loop is shutting down gracefully ([`Context::shutdown`],
    /// [`Map::shutdown`](crate::Map::shutdown)). Default: a listener or a
    /// plain dispatcher closes at once; a buffered one delivers what it has
    /// queued, then closes. Override it to finish work in flight first (a
    /// reply still owed), then close; whatever is still open when the grace
    /// period ends is closed by the loop. A channel added while the loop
    /// drains is told as it joins.
    fn handle_shutdown(&mut self, ch: &mut D, cx: &mut Context<'_>) -> io::Result<()> {
        ch.default_handle_shutdown()
    }

    /// A handler returned an error that does not mean "peer gone" (Python:
    /// an uncaught exception). Default: log it at error level, with the
    /// channel, and close the channel.
    ///
    /// Except a listening one: an error while setting up one accepted
    /// connection (say `EMFILE` from `create_socket` in `handle_accepted`,
    /// when the accept took the last fd) is that connection's failure, and
    /// asyncore closing the listener for it took the whole server down. Here
    /// the listener logs it and keeps listening; the accepted socket, dropped
    /// with the error, is closed.
    fn handle_error(&mut self, ch: &mut D, err: io::Error, cx: &mut Context<'_>) {
        if ch.dispatcher().accepting() {
            log::error!(
                "{:?}: uncaptured error: {}; still listening",
                ch.dispatcher(),
                err
            );
            return;
        }
        log::error!("{:?}: uncaptured error: {}; closing", ch.dispatcher(), err);
        ch.close();
    }
}
