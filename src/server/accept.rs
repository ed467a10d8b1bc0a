//! The accept loop: every connection is accepted at once and given a slot (closing an idle
//! or dribbling one if need be, see `slots.rs`); when every slot is writing a reply, it
//! waits in a task for [`BUSY_WAIT`] (at most `max_connections` such waiters), then gets
//! a 503. And the shutdown: stop
//! accepting, close idle connections, let replies in flight finish for at most
//! [`SHUTDOWN_GRACE`], log one line.

use super::conn::Conn;
use super::reply::{self, Framing};
use super::slots::{Admission, Slot, Slots};
use super::{connection, Limits, Listener};
use crate::error::{Error, Subject};
use crate::mirror::Mirror;
use crate::routes;
use futures_lite::future;
use smol::{Async, LocalExecutor, Timer};
use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a connection that finds every slot writing a reply waits for one before it
/// gets a 503: a burst of downloads passes, a server stuck full says so.
pub const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop doesn't spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How long replies in flight may go on after SIGTERM/SIGINT. Under Docker's and
/// systemd's kill timeouts (10 s and 90 s), so we end by ourselves; long enough for a
/// manifest or a small layer on a LAN. A client cut off retries (registry clients resume).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Accepts connections until `shutdown` resolves (with the name of what asked, e.g.
/// `SIGTERM`), then shuts down as the module docs say and returns.
pub async fn serve(
    listener: Listener,
    mirror: Rc<Mirror>,
    limits: Limits,
    executor: Rc<LocalExecutor<'static>>,
    shutdown: impl Future<Output = &'static str>,
) {
    let slots = Slots::new(limits.max_connections);
    let accepting = accept_loop(&listener, &mirror, limits, &executor, &slots);
    let why = future::or(accepting, shutdown).await;
    drop(listener); // new connections are refused by the kernel from here on
    let started = Instant::now();
    let busy_at_start = slots.in_use();
    let idle = slots.drain();
    let busy = busy_at_start - idle;
    let finished = future::or(
        async {
            slots.all_released().await;
            true
        },
        async {
            Timer::after(SHUTDOWN_GRACE).await;
            false
        },
    )
    .await;
    let cut = if finished { 0 } else { slots.in_use() };
    log::info!(
        "shutting down on {why}: closed {idle} idle connections, finished {} of {busy} \
         replies in flight in {}ms{}",
        busy - cut,
        started.elapsed().as_millis(),
        if cut > 0 {
            format!(
                ", cut {cut} after the {}s grace period",
                SHUTDOWN_GRACE.as_secs()
            )
        } else {
            String::new()
        }
    );
}

/// Waits up to [`BUSY_WAIT`] for a slot to be released (not at shutdown).
async fn wait_for_slot(slots: &Slots, peer: SocketAddr) -> Option<Slot> {
    let deadline = Instant::now() + BUSY_WAIT;
    loop {
        if slots.draining() {
            return None;
        }
        if let (_, Some(slot)) = slots.admit(peer.ip(), Instant::now()) {
            return Some(slot);
        }
        let released = async {
            slots.released().await;
            true
        };
        let late = async {
            Timer::at(deadline).await;
            false
        };
        if !future::or(released, late).await {
            return None;
        }
    }
}

/// Answers 503 (`Retry-After: 1`) on a fresh socket and drops it. One write to a fresh
/// socket's empty buffer never blocks.
fn refuse_busy(stream: &Async<TcpStream>, peer: SocketAddr) {
    let reply = routes::error_reply(Error::Busy, Subject::Other);
    let framing = Framing {
        head_only: false,
        close: true,
        http10: false,
    };
    let mut bytes = reply::head(&reply, framing).into_bytes();
    if let crate::http::Body::Bytes(b) = &reply.body {
        bytes.extend_from_slice(b);
    }
    let _ = stream.get_ref().write(&bytes);
    log::info!(
        target: "regmirror::access",
        "{} - - 503 0 0ms - (all connections busy)",
        peer.ip()
    );
}

/// Never returns: accepts and places every connection.
async fn accept_loop(
    listener: &Listener,
    mirror: &Rc<Mirror>,
    limits: Limits,
    executor: &Rc<LocalExecutor<'static>>,
    slots: &Slots,
) -> &'static str {
    let waiting = Rc::new(Cell::new(0usize));
    loop {
        let (stream, peer) = match listener.socket.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("accept failed: {e}");
                Timer::after(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.get_ref().set_nodelay(true);
        let (admission, slot) = slots.admit(peer.ip(), Instant::now());
        let Some(slot) = slot else {
            // Every slot is writing a reply: wait (in a task, not the kernel's backlog)
            // for one to free up, a bounded number of newcomers for a bounded time.
            if waiting.get() >= limits.max_connections {
                refuse_busy(&stream, peer);
                continue;
            }
            waiting.set(waiting.get() + 1);
            let (slots, mirror, waiting) = (slots.clone(), mirror.clone(), waiting.clone());
            let tls = listener.tls.clone();
            let task = async move {
                let slot = wait_for_slot(&slots, peer).await;
                waiting.set(waiting.get() - 1);
                match slot {
                    Some(slot) => {
                        let conn = Conn::new(stream, limits.write_timeout);
                        connection::serve(conn, peer, mirror, limits, slot, tls).await;
                    }
                    None => refuse_busy(&stream, peer),
                }
            };
            executor.spawn(task).detach();
            continue;
        };
        if let Admission::Evict(_) = admission {
            log::debug!("connection from {peer}: closed an idle connection to make room");
        }
        let conn = Conn::new(stream, limits.write_timeout);
        let task = connection::serve(
            conn,
            peer,
            mirror.clone(),
            limits,
            slot,
            listener.tls.clone(),
        );
        executor.spawn(task).detach();
    }
}
