//! One client connection: read request heads into one buffer of
//! [`MAX_HEAD_BYTES`](crate::http::MAX_HEAD_BYTES)
//! (bytes past a head stay for the next, pipelined request), answer each request in
//! order, write the access-log line, and close when the client or the protocol says so.
//!
//! Time limits: a connection idle between requests is closed after the header timeout; a
//! head must arrive within the header timeout of its first byte (else 408), and so must a
//! TLS handshake. A head that cannot be a request (garbage, a bare LF) gets its 400 as
//! soon as the offending byte arrives; a TLS ClientHello on a port without TLS gets a TLS
//! alert and a debug line (see `tls.rs`). Request bodies (we are pull-only, so only uploads we refuse
//! have them): up to [`MAX_DISCARDED_BODY`] with `Content-Length` is read and dropped so
//! the connection stays usable; anything else is answered and the connection closed.
//!
//! Memory per connection: its task (≈2 KiB: the handler's and reply writer's futures are
//! boxed only while they run); the head buffer (`input.rs`), allocated only while a
//! head is being read or pipelined bytes wait, freed while the connection is idle; a
//! reply's head (a few hundred bytes); and, only while relaying an uncached stream,
//! `reply::STREAM_BUF` (64 KiB). Measured (release, `tests/e2e/load.py`): 500 idle
//! connections ≈3 KiB each, 500 slowloris ones ≈11 KiB each.

use super::conn::Conn;
use super::reply::{self, Framing};
use super::slots::{Slot, State};
use super::tls::{HANDSHAKE_FAILURE_ALERT, TLS_HANDSHAKE};
use super::Limits;
use crate::error::{Error, Subject};
use crate::http::{parse_head, BodyLength, Head, HeadError, Method, Parsed};
use crate::metrics::Answered;
use crate::mirror::Mirror;
use crate::routes;
use futures_rustls::TlsAcceptor;
use input::{bounded, discard, linger, Cut, Input};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

/// Largest request body read (and dropped) to keep a connection open after refusing an
/// upload; larger or chunked bodies close the connection instead. Docker's push probes
/// send none or tiny ones.
pub const MAX_DISCARDED_BODY: u64 = 64 * 1024;

/// Longest request target written to the access log; the rest is cut and marked `…`.
pub const MAX_LOGGED_TARGET: usize = 256;

/// Serves one connection until it closes; `slot` is released when this returns.
pub async fn serve(
    conn: Conn,
    peer: SocketAddr,
    mirror: Rc<Mirror>,
    limits: Limits,
    slot: Slot,
    tls: Option<TlsAcceptor>,
) {
    let mut input = Input::new();
    let mut conn = match tls {
        // Boxed: a handshake's state is large, and needed only while it runs.
        Some(acceptor) => match Box::pin(open_tls(conn, peer, &limits, &slot, acceptor)).await {
            Some(conn) => conn,
            None => return,
        },
        None => conn,
    };
    loop {
        if slot.draining() {
            return;
        }
        if input.is_empty() {
            // Idle: wait for a request to begin. Closed silently on timeout (keep-alive,
            // or a spare connection Go clients open), for a newcomer, or at shutdown.
            slot.set(State::Idle(Instant::now()));
            let deadline = Instant::now() + limits.header_timeout;
            if bounded(conn.readable(), deadline, slot.closing())
                .await
                .is_err()
            {
                return;
            }
        }
        slot.set(State::Head(Instant::now()));
        let head = match read_head(&mut conn, &mut input, &limits, &slot).await {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(_) if input.data().first() == Some(&TLS_HANDSHAKE) && !conn.is_tls() => {
                return refuse_tls(&mut conn, &mut input, peer).await
            }
            Err(e) => return refuse(&mut conn, &mut input, peer, e).await,
        };
        slot.set(State::Busy);
        match answer(&mut conn, &mut input, peer, &mirror, &limits, &slot, head).await {
            Next::KeepGoing => {}
            Next::Close => return,
            Next::Linger => return linger(&mut conn, &mut input).await,
        }
    }
}

/// A connection's first byte decides: a TLS handshake record (see `tls.rs`) starts the
/// handshake, anything else is plain HTTP. `None`: the client went away, was closed, or
/// its handshake failed or took longer than the header timeout.
async fn open_tls(
    conn: Conn,
    peer: SocketAddr,
    limits: &Limits,
    slot: &Slot,
    acceptor: TlsAcceptor,
) -> Option<Conn> {
    let deadline = Instant::now() + limits.header_timeout;
    match bounded(conn.peek_byte(), deadline, slot.closing()).await {
        Ok(Some(TLS_HANDSHAKE)) => {}
        Ok(Some(_)) => return Some(conn),
        _ => return None,
    }
    slot.set(State::Head(Instant::now()));
    match bounded(conn.into_tls(&acceptor), deadline, slot.closing()).await {
        Ok(conn) => Some(conn),
        Err(Cut::Io) => {
            log::debug!("TLS handshake with {} failed", peer.ip());
            None
        }
        Err(_) => None,
    }
}

/// Reads one head: `Ok(None)` if the client went away (or was closed) before finishing one.
async fn read_head(
    conn: &mut Conn,
    input: &mut Input,
    limits: &Limits,
    slot: &Slot,
) -> Result<Option<Head>, Error> {
    let deadline = Instant::now() + limits.header_timeout;
    loop {
        match parse_head(input.data()) {
            Ok(Parsed::Complete { head, len }) => {
                input.consume(len);
                return Ok(Some(*head));
            }
            Ok(Parsed::Partial) => {}
            Err(HeadError::TooLarge) => return Err(Error::HeadersTooLarge),
            Err(HeadError::Malformed(why)) => return Err(Error::Malformed(why.into())),
        }
        match bounded(input.fill(conn), deadline, slot.closing()).await {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // Answer a client that sent part of a request; one that sent nothing yet
            // (readable was an error or a spurious wake) just closes.
            Err(Cut::TimedOut) if !input.is_empty() => return Err(Error::HeaderTimeout),
            Err(_) => return Ok(None),
        }
    }
}

/// What the connection does after a reply.
enum Next {
    KeepGoing,
    Close,
    /// Close, reading (and dropping) what the client still sends for a moment first.
    Linger,
}

/// Handles one request and writes its reply and access-log line.
async fn answer(
    conn: &mut Conn,
    input: &mut Input,
    peer: SocketAddr,
    mirror: &Mirror,
    limits: &Limits,
    slot: &Slot,
    head: Head,
) -> Next {
    let started = Instant::now();
    let mut req = head.request;
    req.peer = Some(peer);
    let mut next = Next::KeepGoing;
    match head.body {
        BodyLength::None => {}
        // A client waiting for `100 Continue` sends no body: answer at once, then close.
        BodyLength::Length(n) if n <= MAX_DISCARDED_BODY && !head.expect_continue => {
            let deadline = Instant::now() + limits.header_timeout;
            if discard(conn, input, n, deadline, slot.closing())
                .await
                .is_err()
            {
                return Next::Close;
            }
        }
        BodyLength::Length(_) | BodyLength::Chunked => next = Next::Linger,
    }
    // Boxed: the handler's future is most of a connection's size (≈9 KiB), and is needed
    // only while a request is being handled, not while the connection idles.
    let reply = if req.method.is_known() {
        Box::pin(routes::handle(mirror, &req)).await
    } else {
        routes::error_reply(
            Error::NotImplemented(req.method.to_string()),
            Subject::Other,
        )
    };
    let framing = Framing {
        head_only: req.method == Method::Head,
        close: !head.keep_alive || slot.draining() || !matches!(next, Next::KeepGoing),
        http10: head.http10,
    };
    let closes = framing.closes_after(&reply);
    let (status, outcome, upstream) = (reply.status, reply.outcome, reply.upstream.clone());
    let (sent, result) = Box::pin(reply::send(conn, reply, framing)).await;
    let target = match &req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.clone(),
    };
    mirror.metrics.answered(Answered {
        upstream: upstream.as_ref(),
        registry: req.path.starts_with("/v2/"),
        method: &req.method,
        target: &target,
        status: status.code(),
        outcome,
        sent,
        took: started.elapsed(),
    });
    let cut = match &result {
        Ok(()) => String::new(),
        Err(e) => format!(" INCOMPLETE ({e})"),
    };
    log::info!(
        target: "regmirror::access",
        "{} {} {} {status} {sent} {}ms {outcome}{cut}",
        peer.ip(),
        loggable(&req.method.to_string(), 16),
        loggable(&target, MAX_LOGGED_TARGET),
        started.elapsed().as_millis(),
    );
    match next {
        _ if result.is_err() => Next::Close,
        Next::KeepGoing if closes => Next::Close,
        next => next,
    }
}

/// Answers a request we could not read (or that never finished), then closes.
async fn refuse(conn: &mut Conn, input: &mut Input, peer: SocketAddr, e: Error) {
    log::info!(
        target: "regmirror::access",
        "{} - - {} 0 0ms - ({})",
        peer.ip(),
        e.status().code(),
        loggable(&e.to_string(), MAX_LOGGED_TARGET)
    );
    let reply = routes::error_reply(e, Subject::Other);
    let framing = Framing {
        head_only: false,
        close: true,
        http10: false,
    };
    if reply::send(conn, reply, framing).await.1.is_ok() {
        linger(conn, input).await;
    }
}

/// Answers a TLS ClientHello on a port without TLS with a TLS alert, then closes. skopeo,
/// podman and cri-o try https first on an `insecure` mirror and fall back to http when
/// that fails: an everyday event, logged at debug level only.
async fn refuse_tls(conn: &mut Conn, input: &mut Input, peer: SocketAddr) {
    log::debug!(
        "TLS handshake from {} on a port without TLS (no --tls-cert): answered with a TLS alert",
        peer.ip()
    );
    if conn.send_raw(&HANDSHAKE_FAILURE_ALERT).is_ok() {
        linger(conn, input).await;
    }
}

/// `text` for a log line: at most `max` bytes (cut marked with `…`), control characters
/// escaped so a request cannot forge log lines.
pub fn loggable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 4);
    for c in text.chars() {
        if out.len() >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

mod input;
#[cfg(test)]
mod tests;
