//! Unit tests of the index: reservations within the budget, eviction to the low watermark in
//! LRU order, the start-up scan, hits and touches, partials, pins, a full disk.

use super::*;

fn d(n: u8) -> Digest {
    Digest::of(&[n])
}
fn t(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
}
fn complete(max: u64) -> Index {
    let mut ix = Index::new(max);
    ix.set_complete();
    ix
}

#[test]
fn reserve_within_budget_evicts_nothing() {
    let mut ix = complete(1000);
    ix.insert(d(1), 300, t(0));
    let a = ix.reserve(600).unwrap();
    assert!(a.evict.is_empty());
    assert_eq!(ix.reserved_bytes(), 600);
}

#[test]
fn eviction_goes_to_the_low_watermark_in_lru_order() {
    let mut ix = complete(1000);
    for n in 1..=5 {
        ix.insert(d(n), 200, t(n.into())); // 1000 bytes, blob 1 oldest
    }
    let _ = ix.hit(&d(1), t(10)); // 1 is now the most recent
    let a = ix.reserve(100).unwrap();
    // Low watermark 900: need cached ≤ 800 → evict 2 (LRU), leaving 800.
    assert_eq!(a.evict, vec![Victim::Blob(d(2))]);
    assert_eq!(ix.cached_bytes(), 800);
    ix.release(100);
    ix.insert(d(9), 100, t(11));
    assert!(ix.cached_bytes() <= ix.max_bytes());
}

#[test]
fn within_one_second_the_first_used_goes_first() {
    // An image's manifest, config and layer arrive within a second of the older
    // images' last use: the reservation for its layer must not evict its own manifest,
    // whatever the digests' order.
    for (older, newer) in [(d(9), d(1)), (d(1), d(9))] {
        let mut ix = complete(1000);
        ix.insert(older, 300, t(0)); // an older image, same second
        ix.insert(newer, 300, t(0)); // the new image's manifest, just committed
        let _ = ix.hit(&older, t(0));
        let _ = ix.hit(&newer, t(0)); // and used again after the older one
        let a = ix.reserve(600).unwrap();
        assert_eq!(a.evict, vec![Victim::Blob(older)]);
        assert!(ix.contains(&newer));
    }
}

#[test]
fn the_scan_may_insert_in_any_order() {
    let mut ix = complete(1000);
    for (n, age) in [(3u8, 30u64), (1, 10), (4, 40), (2, 20), (5, 50)] {
        ix.insert_found(d(n), 200, t(age));
    }
    let a = ix.reserve(300).unwrap();
    // 1000 + 300 over budget; watermark 900 - 300 = 600: evict the two oldest.
    assert_eq!(a.evict, vec![Victim::Blob(d(1)), Victim::Blob(d(2))]);
}

#[test]
fn a_hit_before_the_scan_is_not_counted_twice_nor_aged() {
    let mut ix = Index::new(1000);
    ix.insert(d(1), 100, t(100)); // served while the scan ran
    ix.insert_found(d(1), 100, t(0)); // the scan gets there later
    assert_eq!((ix.len(), ix.cached_bytes()), (1, 100));
    ix.insert_found(d(2), 100, t(50));
    ix.set_complete();
    ix.set_max(200);
    let a = ix.reserve(100).unwrap();
    assert_eq!(
        a.evict[0],
        Victim::Blob(d(2)),
        "the scan's older use goes first"
    );
}

#[test]
fn too_big_for_the_budget_is_refused() {
    let mut ix = complete(1000);
    assert!(ix.reserve(1001).is_none());
    let _ = ix.reserve(700).unwrap();
    // 700 reserved by another fill: 400 more can never fit now.
    assert!(ix.reserve(400).is_none());
    assert_eq!(ix.reserved_bytes(), 700);
}

#[test]
fn hit_asks_for_a_touch_at_most_hourly() {
    let mut ix = complete(1000);
    ix.insert(d(1), 1, t(0));
    assert!(!ix.hit(&d(1), t(60)));
    assert!(ix.hit(&d(1), t(TOUCH_INTERVAL.as_secs())));
    assert!(!ix.hit(&d(1), t(TOUCH_INTERVAL.as_secs() + 1)));
}

#[test]
fn partials_count_and_are_evicted_like_blobs() {
    let mut ix = complete(1000);
    ix.insert_partial(d(1), 500, t(0));
    ix.insert(d(2), 400, t(5));
    assert_eq!((ix.cached_bytes(), ix.partial_bytes()), (900, 500));
    let a = ix.reserve(300).unwrap();
    assert_eq!(a.evict, vec![Victim::Partial(d(1))]);
    assert_eq!(ix.take_partial(&d(1)), None);
}

#[test]
fn pinned_blobs_are_never_victims_and_count_against_the_budget() {
    let mut ix = complete(1000);
    for n in 1..=4 {
        ix.insert(d(n), 200, t(n.into())); // 800 bytes, blob 1 oldest
    }
    ix.set_pins([d(1), d(2), d(9)].into_iter().collect());
    assert_eq!(ix.pinned_bytes(), 400, "only what is on disk");
    let a = ix.reserve(300).unwrap();
    // Over budget: the oldest unpinned (3) goes, never 1 or 2.
    assert_eq!(a.evict, vec![Victim::Blob(d(3))]);
    ix.release(300);
    // 400 pinned + 700 can never fit a 1000-byte budget, whatever is evicted.
    assert!(ix.reserve(700).is_none());
    assert!(ix.contains(&d(4)), "nothing evicted for a refused request");
    ix.insert(d(9), 100, t(9)); // the pinned blob arrives
    assert_eq!(ix.pinned_bytes(), 500);
    ix.remove(&d(1));
    assert_eq!(ix.pinned_bytes(), 300);
    let evict = ix.disk_full(0);
    assert!(
        evict.iter().all(|v| *v == Victim::Blob(d(4))),
        "a full disk spares the pins too: {evict:?}"
    );
}

#[test]
fn pins_heavier_than_the_watermark_still_leave_room_under_the_budget() {
    let mut ix = complete(1000);
    ix.insert(d(1), 850, t(1));
    ix.insert(d(2), 100, t(2));
    ix.insert(d(3), 40, t(3));
    ix.set_pins([d(1)].into_iter().collect());
    let a = ix.reserve(100).unwrap();
    // 850 pinned + 100 is over the 900 watermark: evict to 1000, not everything.
    assert_eq!(a.evict, vec![Victim::Blob(d(2))]);
    assert!(ix.contains(&d(3)));
}

#[test]
fn disk_full_excludes_the_unwritten_reservation_and_evicts() {
    // Issue 6, defect 12: a 1000-byte budget on a disk that holds 600. Blob 1 (300)
    // is cached; a fill reserved 400 and wrote 300 when the disk said ENOSPC.
    let mut ix = complete(1000);
    ix.insert(d(1), 300, t(0));
    let _ = ix.reserve(400).unwrap();
    let evict = ix.disk_full(100);
    assert_eq!(
        ix.max_bytes(),
        600,
        "what the disk held: 300 cached + 300 written"
    );
    assert_eq!(evict, vec![Victim::Blob(d(1))], "room made for the rest");
    // A retry of the same blob after the failure no longer "fits" without eviction.
    ix.release(400);
    ix.insert(d(3), 300, t(1));
    let a = ix.reserve(400).unwrap();
    assert_eq!(a.evict, vec![Victim::Blob(d(3))]);
}
