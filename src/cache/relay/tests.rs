//! Unit tests of the relay: readers sharing one stream, a relay nobody reads, wrong bytes,
//! the bounded window and a laggard continuing on its own.

use super::*;
use futures_lite::{future, AsyncReadExt};

fn no_reopen() -> Reopen {
    Box::new(|_| Box::pin(async { Err(io::Error::other("no reopen")) }))
}

fn reopen_from(blob: Vec<u8>) -> Reopen {
    Box::new(move |pos| {
        Box::pin(async move {
            let rest = blob[pos as usize..].to_vec();
            Ok(Box::new(futures_lite::io::Cursor::new(rest)) as Box<dyn AsyncRead + Unpin>)
        })
    })
}

#[test]
fn readers_share_the_stream_and_get_the_last_byte_only_when_verified() {
    future::block_on(async {
        let blob = vec![7u8; 1000];
        let relay = Relay::new(Digest::of(&blob), Some(1000));
        let mut a = relay.attach(no_reopen()).unwrap();
        let mut b = relay.attach(no_reopen()).unwrap();
        assert_eq!(relay.room(1000), Room::Push(1000));
        relay.push(&blob);
        let mut got = vec![0u8; 2000];
        let n = a.read(&mut got).await.unwrap();
        assert_eq!(n, 999, "held back until verified");
        relay.finish().unwrap();
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), 1);
        let mut all = Vec::new();
        b.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, blob);
    })
}

#[test]
fn a_relay_nobody_reads_stops_after_one_window() {
    let relay = Relay::new(Digest::of(b"x"), None);
    let chunk = vec![0u8; 64 * 1024];
    let mut pushed = 0;
    while let Room::Push(n) = relay.room(chunk.len()) {
        relay.push(&chunk[..n]);
        pushed += n;
    }
    assert_eq!((pushed, relay.room(1)), (RELAY_WINDOW, Room::Deserted));
    relay.fail("nobody is reading".into());
    assert!(relay.attach(no_reopen()).is_none(), "too late to join");
}

#[test]
fn wrong_bytes_end_in_an_error_one_byte_short() {
    future::block_on(async {
        let relay = Relay::new(Digest::of(b"hello"), Some(5));
        let mut a = relay.attach(no_reopen()).unwrap();
        relay.push(b"jello");
        assert!(relay.finish().is_err());
        let mut got = Vec::new();
        assert!(a.read_to_end(&mut got).await.is_err());
        assert_eq!(got, b"jell");
    })
}

#[test]
fn the_window_is_bounded_and_a_laggard_continues_on_its_own() {
    future::block_on(async {
        let blob: Vec<u8> = (0..3 * RELAY_WINDOW).map(|i| (i % 251) as u8).collect();
        let total = blob.len() as u64;
        let relay = Relay::new(Digest::of(&blob), Some(total));
        let mut fast = relay.attach(no_reopen()).unwrap();
        let mut slow = relay.attach(reopen_from(blob.clone())).unwrap();
        // Fill the window; nobody has read it: the pump must wait.
        let mut pushed = 0;
        while let Room::Push(n) = relay.room(64 * 1024) {
            relay.push(&blob[pushed..pushed + n]);
            pushed += n;
        }
        assert_eq!(pushed, RELAY_WINDOW);
        let mut first = [0u8; 10];
        slow.read_exact(&mut first).await.unwrap();
        // The fast reader drains the window and starves: the laggard's bytes go.
        let mut fast_got = vec![0u8; pushed - 1];
        fast.read_exact(&mut fast_got).await.unwrap();
        while pushed < blob.len() {
            match relay.room(64 * 1024) {
                Room::Push(n) => {
                    let n = n.min(blob.len() - pushed);
                    relay.push(&blob[pushed..pushed + n]);
                    pushed += n;
                    let mut chunk = vec![0u8; n];
                    fast.read_exact(&mut chunk).await.unwrap();
                    fast_got.extend_from_slice(&chunk);
                }
                other => panic!("{other:?} with a starving reader"),
            }
            assert!(relay.state.borrow().ring.len() <= RELAY_WINDOW);
        }
        relay.finish().unwrap();
        fast.read_to_end(&mut fast_got).await.unwrap();
        assert!(fast_got == blob);
        let mut slow_got = first.to_vec();
        slow.read_to_end(&mut slow_got).await.unwrap();
        assert!(
            slow_got == blob,
            "the laggard's own stream continued where it was"
        );
        drop((fast, slow));
        assert_eq!(relay.room(1), Room::Deserted);
    })
}
