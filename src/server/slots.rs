//! Connection slots: how many connections we serve at once, how many one client address
//! may hold, and whom to close when a new connection finds no free slot.
//!
//! The accept loop never waits for a slot (a waiting loop leaves new connections in the
//! kernel's backlog, where a `/v2/` probe times out behind 500 idle sockets). Instead, a
//! connection arriving when its address or the whole server is at its limit closes
//! someone who is not being served:
//! 1. a connection idle between requests (keep-alive, or opened and never used), the one
//!    idle longest first — a client may always lose an idle connection (RFC 9112 §9.5);
//! 2. else a connection still sending its head, the one that started longest ago (a
//!    slowloris drips; a real client sends its head in one packet);
//! 3. else nobody — every slot is writing a reply — and the newcomer waits for a release
//!    (bounded in time and number, see `accept.rs`), then gets a 503.
//!
//! At its own limit an address sheds its *own* connections, so one address cannot push
//! everyone else out; below that, the victim is chosen among the address holding the most.
//! Many real clients share one address (a Docker daemon's parallel layer downloads, the
//! e2e suite's pulls, an office behind NAT), so the per-address share is generous, and a
//! fresh `/v2/` probe from that same address still gets in by closing an idle one.
//!
//! Single-threaded (`Rc<RefCell<…>>` on the executor's thread); no borrow is held across
//! an `.await`.

use event_listener::Event;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

/// What a connection is doing, for the choice of whom to close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the first byte of a request, since the instant given.
    Idle(Instant),
    /// Reading a request head that started at the instant given.
    Head(Instant),
    /// Handling a request or writing its reply: never closed for a newcomer.
    Busy,
}

/// The share of all slots one client address may hold: three quarters, so several
/// machines behind one NAT (or one Docker daemon's parallel pulls) fit, while a flood
/// from one address leaves a quarter to everyone else.
pub fn per_address_limit(max_connections: usize) -> usize {
    (max_connections - max_connections / 4).max(1)
}

/// The accept loop's decision for a new connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A slot is free.
    Admit,
    /// Close connection `id` (already removed from the count), then admit.
    Evict(u64),
    /// Every slot that could be freed is busy: wait for one, or refuse with 503.
    Refuse,
}

/// Told to a connection's waits when it must close (chosen as a victim, or shutdown).
#[derive(Debug, Default)]
pub struct Closing {
    now: Cell<bool>,
    event: Event,
}

impl Closing {
    /// Whether the connection was told to close.
    #[cfg(test)]
    pub fn is_set(&self) -> bool {
        self.now.get()
    }

    fn set(&self) {
        self.now.set(true);
        self.event.notify(usize::MAX);
    }

    /// Resolves once the connection is told to close.
    pub async fn wait(&self) {
        loop {
            if self.now.get() {
                return;
            }
            let listener = self.event.listen();
            if self.now.get() {
                return;
            }
            listener.await;
        }
    }
}

struct Entry {
    ip: IpAddr,
    state: State,
    closing: Rc<Closing>,
}

struct Inner {
    max: usize,
    per_address: usize,
    next_id: u64,
    /// By id, so iteration is oldest connection first.
    entries: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Set at shutdown: finish the reply in progress, then close.
    draining: bool,
}

/// Every connection's slot. Cheap to clone (one `Rc`).
#[derive(Clone)]
pub struct Slots {
    inner: Rc<RefCell<Inner>>,
    /// Notified whenever a slot is released (shutdown waits for none left).
    released: Rc<Event>,
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({} in use)", self.in_use())
    }
}

impl Slots {
    /// `max` connections at once, [`per_address_limit`] of them per address.
    pub fn new(max: usize) -> Slots {
        let max = max.max(1);
        Slots {
            inner: Rc::new(RefCell::new(Inner {
                max,
                per_address: per_address_limit(max),
                next_id: 0,
                entries: BTreeMap::new(),
                per_ip: HashMap::new(),
                draining: false,
            })),
            released: Rc::new(Event::new()),
        }
    }

    /// Decides about a connection from `ip`; on `Admit` or `Evict` it holds a slot.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> (Admission, Option<Slot>) {
        let mut inner = self.inner.borrow_mut();
        let held = inner.per_ip.get(&ip).copied().unwrap_or(0);
        let admission = if held >= inner.per_address {
            match inner.victim(Some(ip)) {
                Some(id) => Admission::Evict(id),
                None => Admission::Refuse,
            }
        } else if inner.entries.len() >= inner.max {
            match inner.victim(None) {
                Some(id) => Admission::Evict(id),
                None => Admission::Refuse,
            }
        } else {
            Admission::Admit
        };
        if admission == Admission::Refuse {
            return (admission, None);
        }
        if let Admission::Evict(id) = admission {
            inner.remove(id);
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let closing = Rc::new(Closing::default());
        inner.entries.insert(
            id,
            Entry {
                ip,
                state: State::Idle(now),
                closing: closing.clone(),
            },
        );
        *inner.per_ip.entry(ip).or_insert(0) += 1;
        drop(inner);
        if let Admission::Evict(_) = admission {
            self.released.notify(usize::MAX);
        }
        let slot = Slot {
            id,
            slots: self.clone(),
            closing,
        };
        (admission, Some(slot))
    }

    /// Connections holding a slot.
    pub fn in_use(&self) -> usize {
        self.inner.borrow().entries.len()
    }

    /// Shutdown: every connection not busy is told to close now, busy ones after their
    /// reply.
    pub fn drain(&self) -> usize {
        let mut inner = self.inner.borrow_mut();
        inner.draining = true;
        let idle: Vec<u64> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.state != State::Busy)
            .map(|(id, _)| *id)
            .collect();
        for id in &idle {
            inner.remove(*id);
        }
        drop(inner);
        self.released.notify(usize::MAX);
        idle.len()
    }

    /// Whether shutdown has begun.
    pub fn draining(&self) -> bool {
        self.inner.borrow().draining
    }

    /// Resolves at the next release of a slot.
    pub async fn released(&self) {
        self.released.listen().await;
    }

    /// Resolves once no connection holds a slot.
    pub async fn all_released(&self) {
        loop {
            if self.in_use() == 0 {
                return;
            }
            let listener = self.released.listen();
            if self.in_use() == 0 {
                return;
            }
            listener.await;
        }
    }
}

impl Inner {
    /// The connection to close for a newcomer: among `ip`'s own, or (for `None`) among the
    /// address holding the most; idle longest first, then the oldest unfinished head.
    fn victim(&self, ip: Option<IpAddr>) -> Option<u64> {
        let ip = ip.or_else(|| {
            // The address with the most connections that could be closed.
            let mut closable: HashMap<IpAddr, usize> = HashMap::new();
            for e in self.entries.values().filter(|e| e.state != State::Busy) {
                *closable.entry(e.ip).or_insert(0) += 1;
            }
            closable
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(ip, _)| ip)
        })?;
        let mine = || self.entries.iter().filter(move |(_, e)| e.ip == ip);
        let idle = mine()
            .filter_map(|(id, e)| match e.state {
                State::Idle(since) => Some((since, *id)),
                _ => None,
            })
            .min();
        let head = || {
            mine()
                .filter_map(|(id, e)| match e.state {
                    State::Head(since) => Some((since, *id)),
                    _ => None,
                })
                .min()
        };
        idle.or_else(head).map(|(_, id)| id)
    }

    fn remove(&mut self, id: u64) {
        if let Some(e) = self.entries.remove(&id) {
            if let Some(n) = self.per_ip.get_mut(&e.ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&e.ip);
                }
            }
            e.closing.set();
        }
    }
}

/// One connection's slot; released when dropped.
pub struct Slot {
    id: u64,
    slots: Slots,
    closing: Rc<Closing>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({})", self.id)
    }
}

impl Slot {
    /// Records what the connection is doing.
    pub fn set(&self, state: State) {
        if let Some(e) = self.slots.inner.borrow_mut().entries.get_mut(&self.id) {
            e.state = state;
        }
    }

    /// Told to close: chosen for a newcomer, or shutdown.
    pub fn closing(&self) -> &Closing {
        &self.closing
    }

    /// Shutdown has begun: close after the reply in progress.
    pub fn draining(&self) -> bool {
        self.slots.draining()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.inner.borrow_mut().remove(self.id);
        self.slots.released.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests;
