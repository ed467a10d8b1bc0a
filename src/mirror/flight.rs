//! Work in flight, shared: the first request for a key starts the work as its own task,
//! every request for the same key while it runs awaits that one outcome.
//!
//! The task belongs to no request, so a client that leaves (or stops waiting, as a stale
//! answer does) cannot cancel it, and a late outcome is still acted on by the work itself.
//! The task settles its [`Flight`] through a guard: finished or dropped unfinished (the
//! executor went away), the flight leaves the map and every waiter wakes — no waiter can
//! hang on work that will never end.

use event_listener::Event;
use smol::LocalExecutor;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Instant;

/// Whether a request started the work or joined it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Started it.
    Leader,
    /// Joined work another request had started.
    Follower,
}

/// The flights running now, by key. Single-threaded: the map is never borrowed across an
/// `.await`.
pub struct Flights<K, T> {
    running: RefCell<HashMap<K, Rc<Flight<T>>>>,
}

/// One piece of work in flight and, once settled, its outcome.
pub struct Flight<T> {
    started: Instant,
    state: RefCell<State<T>>,
    settled: Event,
}

enum State<T> {
    Running,
    Done(T),
    /// The task was dropped before it finished.
    Abandoned,
}

impl<K: Hash + Eq + Clone + 'static, T: Clone + 'static> Flights<K, T> {
    /// No flights.
    pub fn new() -> Flights<K, T> {
        Flights {
            running: RefCell::new(HashMap::new()),
        }
    }

    /// The flight for `key`: the running one (`Follower`), or a new one running
    /// `work()` on `executor` (`Leader`).
    pub fn join<F>(
        self: &Rc<Self>,
        key: K,
        executor: &LocalExecutor<'static>,
        work: impl FnOnce() -> F,
    ) -> (Rc<Flight<T>>, Role)
    where
        F: Future<Output = T> + 'static,
    {
        if let Some(flight) = self.running.borrow().get(&key) {
            return (flight.clone(), Role::Follower);
        }
        let flight = Rc::new(Flight {
            started: Instant::now(),
            state: RefCell::new(State::Running),
            settled: Event::new(),
        });
        self.running
            .borrow_mut()
            .insert(key.clone(), flight.clone());
        let settle = Settle {
            flights: self.clone(),
            key,
            flight: flight.clone(),
        };
        let work = work();
        executor
            .spawn(async move {
                let outcome = work.await;
                settle.done(outcome);
            })
            .detach();
        (flight, Role::Leader)
    }

    /// How many flights are running.
    pub fn len(&self) -> usize {
        self.running.borrow().len()
    }
}

impl<T: Clone> Flight<T> {
    /// When the work started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The outcome, once the work is done; `None` if it was abandoned.
    pub async fn wait(&self) -> Option<T> {
        loop {
            if let Some(settled) = self.settled() {
                return settled;
            }
            let listener = self.settled.listen();
            // Settled between the check and `listen`: the notification was missed.
            if let Some(settled) = self.settled() {
                return settled;
            }
            listener.await;
        }
    }

    fn settled(&self) -> Option<Option<T>> {
        match &*self.state.borrow() {
            State::Running => None,
            State::Done(v) => Some(Some(v.clone())),
            State::Abandoned => Some(None),
        }
    }
}

/// Owned by the task: records the outcome, and in `Drop` (finished or not) takes the
/// flight out of the map and wakes every waiter.
struct Settle<K: Hash + Eq, T> {
    flights: Rc<Flights<K, T>>,
    key: K,
    flight: Rc<Flight<T>>,
}

impl<K: Hash + Eq, T> Settle<K, T> {
    fn done(self, outcome: T) {
        *self.flight.state.borrow_mut() = State::Done(outcome);
    }
}

impl<K: Hash + Eq, T> Drop for Settle<K, T> {
    fn drop(&mut self) {
        {
            let mut state = self.flight.state.borrow_mut();
            if matches!(*state, State::Running) {
                *state = State::Abandoned;
            }
        }
        let mut running = self.flights.running.borrow_mut();
        if running
            .get(&self.key)
            .is_some_and(|f| Rc::ptr_eq(f, &self.flight))
        {
            running.remove(&self.key);
        }
        self.flight.settled.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn followers_share_the_leaders_one_outcome() {
        let ex = LocalExecutor::new();
        let flights: Rc<Flights<&str, u32>> = Rc::new(Flights::new());
        let runs = Rc::new(Cell::new(0));
        let (gate_tx, gate_rx) = smol::channel::bounded::<()>(1);
        let start = |runs: Rc<Cell<u32>>, gate: smol::channel::Receiver<()>| {
            move || async move {
                runs.set(runs.get() + 1);
                let _ = gate.recv().await;
                7
            }
        };
        let (a, ra) = flights.join("k", &ex, start(runs.clone(), gate_rx.clone()));
        let (b, rb) = flights.join("k", &ex, start(runs.clone(), gate_rx.clone()));
        assert_eq!((ra, rb, flights.len()), (Role::Leader, Role::Follower, 1));
        let got = smol::block_on(ex.run(async {
            gate_tx.send(()).await.unwrap();
            (a.wait().await, b.wait().await)
        }));
        assert_eq!(got, (Some(7), Some(7)));
        assert_eq!((runs.get(), flights.len()), (1, 0), "settled flights leave");
        // The next join starts fresh work.
        let (_, role) = flights.join("k", &ex, start(runs.clone(), gate_rx));
        assert_eq!(role, Role::Leader);
    }

    #[test]
    fn work_dropped_unfinished_wakes_its_waiters_with_nothing() {
        let flights: Rc<Flights<u8, u8>> = Rc::new(Flights::new());
        let doomed = LocalExecutor::new();
        let (flight, _) = flights.join(1, &doomed, std::future::pending::<u8>);
        let _ = doomed.try_tick(); // the work starts, then never ends
        let waiter = LocalExecutor::new();
        let waiting = waiter.spawn({
            let flight = flight.clone();
            async move { flight.wait().await }
        });
        assert!(
            waiter.try_tick() && !waiting.is_finished(),
            "waits while running"
        );
        drop(doomed);
        assert_eq!(flights.len(), 0);
        assert_eq!(smol::block_on(waiter.run(waiting)), None);
    }
}
