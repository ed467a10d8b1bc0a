//! SIGTERM, SIGINT and SIGHUP as a future the accept loop can wait on.
//!
//! smol-rs's `async-signal`: its handler (installed through `signal-hook-registry`) only
//! writes the signal's number to a socket pair, which the reactor we already run reads —
//! no thread is started (signal-hook's own iterator API would start one). SIGHUP is
//! caught so it cannot end the process (its default action); re-reading configuration on
//! SIGHUP is not supported yet, and saying so in the log is all it does.

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use std::future::Future;
use std::io;

/// Installs the handlers now (so a signal that comes early is not the default kill) and
/// returns a future that resolves with `"SIGTERM"` or `"SIGINT"` when one arrives.
pub fn termination() -> io::Result<impl Future<Output = &'static str>> {
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])?;
    Ok(async move {
        loop {
            match signals.next().await {
                Some(Ok(Signal::Term)) => return "SIGTERM",
                Some(Ok(Signal::Int)) => return "SIGINT",
                Some(Ok(Signal::Hup)) => log::warn!(
                    "SIGHUP received: reloading the configuration is not supported yet; \
                     ignored (restart the service to apply changes)"
                ),
                Some(Ok(_)) | Some(Err(_)) => {}
                None => return std::future::pending().await,
            }
        }
    })
}
