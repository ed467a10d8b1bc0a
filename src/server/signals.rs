//! SIGTERM, SIGINT and SIGHUP as a future the accept loop can wait on.
//!
//! smol-rs's `async-signal`: its handler (installed through `signal-hook-registry`) only
//! writes the signal's number to a socket pair, which the reactor we already run reads —
//! no thread is started (signal-hook's own iterator API would start one). SIGHUP is
//! caught so it cannot end the process (its default action) and passed on through a
//! channel: the mirror re-reads its keep list and its admin token file
//! (`Mirror::reload`). Everything else needs a restart, which keeps the cache: upstream
//! credentials are read from their password files at start and built into each upstream's
//! client with its token cache, and swapping them under requests that are fetching
//! tokens with the old ones is not worth the risk for a setting that changes once a year.

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use std::future::Future;
use std::io;

/// Installs the handlers now (so a signal that comes early is not the default kill) and
/// returns a future that resolves with `"SIGTERM"` or `"SIGINT"` when one arrives. Each
/// SIGHUP is sent on `hup` (several before the first is handled count as one).
pub fn termination(
    hup: smol::channel::Sender<()>,
) -> io::Result<impl Future<Output = &'static str>> {
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])?;
    Ok(async move {
        loop {
            match signals.next().await {
                Some(Ok(Signal::Term)) => return "SIGTERM",
                Some(Ok(Signal::Int)) => return "SIGINT",
                Some(Ok(Signal::Hup)) => {
                    log::info!(
                        "SIGHUP received: re-reading the keep list and the admin token file \
                         (other settings need a restart)"
                    );
                    let _ = hup.try_send(());
                }
                Some(Ok(_)) | Some(Err(_)) => {}
                None => return std::future::pending().await,
            }
        }
    })
}
