//! Go `net.Conn`-style deadlines for tokio I/O.
//!
//! A deadline is an absolute [`Instant`]. When it passes, a pending read (or
//! write) returns [`StreamError::TimedOut`](crate::StreamError::TimedOut) and
//! nothing is closed: poll-based I/O keeps no state between calls, so
//! interrupting one loses no byte. Moving or clearing the deadline makes the
//! direction usable again.
//!
//! [`Deadlines`] is the shared, cloneable half: any task may set it, even while
//! another task is blocked in a read, and setting it wakes that task. A
//! [`DeadlineTimer`] is the per-direction half owned by the I/O object; it
//! keeps one lazily allocated `Sleep` that is `reset` rather than recreated.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
};
use tokio::time::{Instant, Sleep};

/// Which direction a deadline applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Reads (`poll_read`).
    Read,
    /// Writes (`poll_write`, `poll_flush`, `poll_shutdown`).
    Write,
}

#[derive(Debug, Default)]
struct Slot {
    at: Option<Instant>,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct State {
    read: Slot,
    write: Slot,
}

impl State {
    fn slot(&mut self, dir: Direction) -> &mut Slot {
        match dir {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }
}

/// A cloneable handle on the read and write deadlines of one I/O object.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use mux_core::Deadlines;
/// use tokio::time::{Duration, Instant};
///
/// let deadlines = Deadlines::new();
/// let other_task = deadlines.clone();
/// other_task.set_read(Some(Instant::now() + Duration::from_secs(1)));
/// assert!(deadlines.read().is_some());
/// deadlines.set(None); // clears both directions
/// assert_eq!(deadlines.read(), None);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Deadlines {
    state: Arc<Mutex<State>>,
}

impl Deadlines {
    /// Creates a handle with no deadline set.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding this lock cannot leave the two
        // plain fields inconsistent, so poisoning is safe to ignore.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets (or with `None` clears) the deadline of one direction, waking a
    /// pending operation in that direction so it re-evaluates.
    pub fn set_dir(&self, dir: Direction, at: Option<Instant>) {
        let waker = {
            let mut state = self.lock();
            let slot = state.slot(dir);
            slot.at = at;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Sets or clears the read deadline.
    pub fn set_read(&self, at: Option<Instant>) {
        self.set_dir(Direction::Read, at);
    }

    /// Sets or clears the write deadline.
    pub fn set_write(&self, at: Option<Instant>) {
        self.set_dir(Direction::Write, at);
    }

    /// Sets or clears both deadlines.
    pub fn set(&self, at: Option<Instant>) {
        self.set_read(at);
        self.set_write(at);
    }

    /// The current read deadline.
    pub fn read(&self) -> Option<Instant> {
        self.lock().read.at
    }

    /// The current write deadline.
    pub fn write(&self) -> Option<Instant> {
        self.lock().write.at
    }

    /// Whether the deadline of `dir` has already passed (no waker registered).
    pub fn is_expired(&self, dir: Direction) -> bool {
        let at = self.lock().slot(dir).at;
        at.is_some_and(|at| at <= Instant::now())
    }

    /// Polls whether the deadline of `dir` has passed.
    ///
    /// Returns `Ready(())` once it has. Otherwise registers `cx` so that both
    /// the timer firing and any change of the deadline wake the task.
    pub fn poll_expired(
        &self,
        dir: Direction,
        timer: &mut DeadlineTimer,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let at = {
            let mut state = self.lock();
            let slot = state.slot(dir);
            match &mut slot.waker {
                Some(w) => w.clone_from(cx.waker()),
                None => slot.waker = Some(cx.waker().clone()),
            }
            slot.at
        };
        timer.poll_until(at, cx)
    }
}

/// The timer behind one direction's deadline, owned by the I/O object.
///
/// It allocates its `Sleep` only when a deadline is first armed, so idle
/// objects without deadlines pay one pointer.
#[derive(Debug, Default)]
pub struct DeadlineTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineTimer {
    /// Creates an unarmed timer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Polls until `at`: `Ready` once it has passed, `Pending` (with the timer
    /// registered) before, and `Pending` forever for `None`.
    pub fn poll_until(&mut self, at: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(at) = at else {
            return Poll::Pending;
        };
        if at <= Instant::now() {
            return Poll::Ready(());
        }
        let sleep = match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        sleep.as_mut().poll(cx)
    }
}
