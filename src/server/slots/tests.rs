//! Unit tests of the connection slots: whom a newcomer closes when the server or an address
//! is full, and what a drain closes.

use super::*;
use std::time::Duration;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

#[test]
fn a_full_server_closes_the_longest_idle_connection_first() {
    let slots = Slots::new(4);
    let t = Instant::now();
    let mut held = Vec::new();
    for i in 0..3 {
        let (a, s) = slots.admit(ip(i + 1), t);
        assert_eq!(a, Admission::Admit);
        held.push(s.unwrap());
    }
    let (_, s) = slots.admit(ip(1), t);
    held.push(s.unwrap());
    held[0].set(State::Head(t));
    held[1].set(State::Idle(t + Duration::from_secs(2)));
    held[2].set(State::Busy);
    held[3].set(State::Idle(t + Duration::from_secs(1)));
    // ip(1) holds two (0: head, 3: idle): its idle one goes, not its dribbling one.
    let (a, s) = slots.admit(ip(9), t);
    assert_eq!(a, Admission::Evict(3));
    assert!(held[3].closing().is_set() && !held[0].closing().is_set());
    assert_eq!(slots.in_use(), 4);
    drop(s);
    assert_eq!(slots.in_use(), 3);
}

#[test]
fn dribbling_heads_go_oldest_first_and_busy_ones_never() {
    let slots = Slots::new(2);
    let t = Instant::now();
    let (_, a) = slots.admit(ip(1), t);
    let (_, b) = slots.admit(ip(1), t);
    let (a, b) = (a.unwrap(), b.unwrap());
    a.set(State::Head(t + Duration::from_secs(1)));
    b.set(State::Head(t));
    let (adm, c) = slots.admit(ip(2), t);
    assert_eq!(adm, Admission::Evict(1));
    let c = c.unwrap();
    a.set(State::Busy);
    c.set(State::Busy);
    assert_eq!(slots.admit(ip(3), t).0, Admission::Refuse);
}

#[test]
fn an_address_at_its_share_sheds_its_own_connections() {
    let slots = Slots::new(8); // 6 per address
    let t = Instant::now();
    let (_, other) = slots.admit(ip(2), t);
    let other = other.unwrap();
    let mut mine = Vec::new();
    for _ in 0..6 {
        mine.push(slots.admit(ip(1), t).1.unwrap());
    }
    // A seventh from ip(1): one of its own idle ones goes, not ip(2)'s.
    let (adm, _s) = slots.admit(ip(1), t);
    assert_eq!(adm, Admission::Evict(1));
    assert!(!other.closing().is_set());
    for s in &mine {
        s.set(State::Busy);
    }
    assert_eq!(
        slots.admit(ip(1), t).0,
        Admission::Evict(7),
        "the newest, idle"
    );
}

#[test]
fn drain_closes_all_but_busy_ones() {
    let slots = Slots::new(4);
    let t = Instant::now();
    let (_, a) = slots.admit(ip(1), t);
    let (_, b) = slots.admit(ip(1), t);
    let (a, b) = (a.unwrap(), b.unwrap());
    b.set(State::Busy);
    assert_eq!(slots.drain(), 1);
    assert!(a.closing().is_set() && !b.closing().is_set() && b.draining());
    assert_eq!(slots.in_use(), 1);
    drop(b);
    assert_eq!(slots.in_use(), 0);
    drop(a);
}
