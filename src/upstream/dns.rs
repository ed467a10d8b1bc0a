//! Resolving upstream host names without blocking the executor and without a thread pool:
//! one dedicated thread, `regmirror-dns`, runs the blocking `getaddrinfo` (std's
//! `to_socket_addrs`) for every lookup, one at a time, and answers over a channel.
//!
//! Why a thread at all: glibc's resolver only blocks. Why exactly one: smol's
//! `TcpStream::connect("host:port")` would hand each lookup to the `blocking` crate's pool,
//! which starts threads on demand (`blocking-1`, …) — threads started because of what a
//! client asked for. Here the thread is started once, when [`Resolver::start`] runs (at
//! start-up, from `Upstreams::new`), and ends when the last [`Resolver`] handle is dropped.
//! IP literals never reach it (the caller connects to them directly).
//!
//! Lookups are asked through a bounded queue ([`MAX_QUEUED_LOOKUPS`]); a lookup whose asker
//! has given up (timed out) by the time its turn comes is skipped.

use smol::channel::{self, Receiver, Sender};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::thread;

/// The resolver thread's name, as `/proc/PID/task/*/comm` shows it.
pub const THREAD_NAME: &str = "regmirror-dns";

/// Lookups waiting for the resolver thread. Upstream connections are rare (one per fill,
/// manifest or token request) and each caller gives up after the connect timeout; past
/// this many, askers wait (asynchronously) for room, so memory stays bounded.
pub(crate) const MAX_QUEUED_LOOKUPS: usize = 64;

/// Addresses kept from one lookup: connect tries them in order. More are never needed.
pub(crate) const MAX_ADDRESSES: usize = 8;

/// One lookup: `host`, `port`, and where the answer goes.
struct Lookup {
    host: String,
    port: u16,
    reply: Sender<io::Result<Vec<SocketAddr>>>,
}

/// A handle to the resolver thread; cheap to clone. The thread ends when every handle is
/// gone.
#[derive(Clone, Debug)]
pub(crate) struct Resolver {
    queue: Sender<Lookup>,
}

impl Resolver {
    /// Starts the `regmirror-dns` thread.
    pub(crate) fn start() -> io::Result<Resolver> {
        Resolver::spawn().map(|(resolver, _detached)| resolver)
    }

    fn spawn() -> io::Result<(Resolver, thread::JoinHandle<()>)> {
        let (queue, lookups) = channel::bounded(MAX_QUEUED_LOOKUPS);
        let thread = thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || serve(lookups))?;
        Ok((Resolver { queue }, thread))
    }

    /// The addresses of `host:port` (at most [`MAX_ADDRESSES`]); an error if there are none.
    pub(crate) async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        let (reply, answer) = channel::bounded(1);
        let lookup = Lookup {
            host: host.to_owned(),
            port,
            reply,
        };
        let gone = || io::Error::other("the DNS resolver thread is gone");
        self.queue.send(lookup).await.map_err(|_| gone())?;
        let addrs = answer.recv().await.map_err(|_| gone())??;
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no address for {host}"),
            ));
        }
        Ok(addrs)
    }
}

/// The thread's loop: one lookup at a time until every sender is dropped.
fn serve(lookups: Receiver<Lookup>) {
    while let Ok(l) = lookups.recv_blocking() {
        if l.reply.is_closed() {
            continue; // the asker gave up while this waited in the queue
        }
        let answer = (l.host.as_str(), l.port)
            .to_socket_addrs()
            .map(|addrs| addrs.take(MAX_ADDRESSES).collect());
        let _ = l.reply.try_send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_on_its_own_named_thread_and_stops_with_its_handles() {
        let (r, thread) = Resolver::spawn().unwrap();
        assert_eq!(thread.thread().name(), Some(THREAD_NAME));
        let addrs = smol::block_on(r.clone().resolve("localhost", 5000)).unwrap();
        assert!(!addrs.is_empty() && addrs.len() <= MAX_ADDRESSES);
        assert!(
            addrs
                .iter()
                .all(|a| a.port() == 5000 && a.ip().is_loopback()),
            "{addrs:?}"
        );
        drop(r);
        thread
            .join()
            .expect("the thread ends once its handles are gone");
    }
}
