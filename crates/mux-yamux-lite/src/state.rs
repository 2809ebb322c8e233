//! The state the driver task and the handles share: the session plus the
//! wakers of every task waiting on it. It lives behind one mutex
//! ([`Link::lock`](crate::driver::Link::lock)).
//!
//! One lock (instead of channels per stream) means a stream's `poll_read`
//! copies straight out of the session's receive buffer and `poll_write`
//! straight into its send buffer: no message hop, no allocation per call.

use std::task::{Context, Waker};

use mux_core::StreamId;

use crate::payload_pool::PayloadPool;
use crate::session::{Event, Session};
use crate::StreamMap;

/// The current time on tokio's clock (virtual under a paused test clock).
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Debug, Default)]
pub(crate) struct WakerList(Vec<Waker>);

impl WakerList {
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        if !self.0.iter().any(|w| w.will_wake(cx.waker())) {
            self.0.push(cx.waker().clone());
        }
    }

    fn drain_into(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.0);
    }
}

/// The session and the tasks waiting on it.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) session: Session,
    /// Buffers for large writes, given back by the driver once written.
    pub(crate) payloads: PayloadPool,
    read_wakers: StreamMap<Waker>,
    write_wakers: StreamMap<Waker>,
    pub(crate) accept_wakers: WakerList,
    pub(crate) open_wakers: WakerList,
    pub(crate) close_wakers: WakerList,
    driver_waker: Option<Waker>,
    /// The driver was woken since its current turn began, so another wake
    /// would only cost a cross-thread notification.
    driver_notified: bool,
    /// The driver task has ended; the transport is gone.
    pub(crate) driver_done: bool,
}

impl ConnState {
    pub(crate) fn new(session: Session) -> Self {
        Self {
            session,
            payloads: PayloadPool::default(),
            read_wakers: StreamMap::default(),
            write_wakers: StreamMap::default(),
            accept_wakers: WakerList::default(),
            open_wakers: WakerList::default(),
            close_wakers: WakerList::default(),
            driver_waker: None,
            driver_notified: false,
            driver_done: false,
        }
    }

    pub(crate) fn register_read(&mut self, id: StreamId, cx: &Context<'_>) {
        register(&mut self.read_wakers, id.get(), cx);
    }

    pub(crate) fn register_write(&mut self, id: StreamId, cx: &Context<'_>) {
        register(&mut self.write_wakers, id.get(), cx);
    }

    /// Wakes whatever task waits on stream `id`, in either direction.
    pub(crate) fn wake_stream(&mut self, id: StreamId) {
        let id = id.get();
        let wakers = [self.read_wakers.remove(&id), self.write_wakers.remove(&id)];
        for w in wakers.into_iter().flatten() {
            w.wake();
        }
    }

    /// Gives back storage kept for reuse once the connection is quiet:
    /// the payload pool, the session's spares and queue room, and the
    /// room the waker maps grew to.
    pub(crate) fn release_idle_storage(&mut self) {
        self.payloads.clear();
        self.session.release_idle_storage();
        self.read_wakers.shrink_to(0);
        self.write_wakers.shrink_to(0);
    }

    pub(crate) fn forget_stream(&mut self, id: StreamId) {
        let id = id.get();
        self.read_wakers.remove(&id);
        self.write_wakers.remove(&id);
    }

    /// Called by the driver at the start of each turn.
    pub(crate) fn set_driver_waker(&mut self, cx: &Context<'_>) {
        self.driver_notified = false;
        match &mut self.driver_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
    }

    /// Wakes the driver if the session has frames to send.
    pub(crate) fn notify_driver(&mut self) {
        if self.session.wants_transmit() {
            self.wake_driver();
        }
    }

    pub(crate) fn wake_driver(&mut self) {
        if self.driver_notified {
            return;
        }
        if let Some(w) = &self.driver_waker {
            self.driver_notified = true;
            w.wake_by_ref();
        }
    }

    /// Turns session events into the wakers to call; the caller wakes them
    /// after releasing the lock so woken tasks do not contend for it.
    pub(crate) fn collect_wakers(&mut self, out: &mut Vec<Waker>) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Readable(id) => out.extend(self.read_wakers.remove(&id.get())),
                Event::Writable(id) => out.extend(self.write_wakers.remove(&id.get())),
                Event::Incoming => self.accept_wakers.drain_into(out),
                Event::OpenReady => self.open_wakers.drain_into(out),
                Event::StateChanged => self.wake_all_into(out),
            }
        }
    }

    pub(crate) fn wake_all_into(&mut self, out: &mut Vec<Waker>) {
        out.extend(self.read_wakers.drain().map(|(_, w)| w));
        out.extend(self.write_wakers.drain().map(|(_, w)| w));
        self.accept_wakers.drain_into(out);
        self.open_wakers.drain_into(out);
        self.close_wakers.drain_into(out);
    }

    /// Wakes whatever the session's pending events concern, right now.
    /// Used by handles, whose commands can also produce events.
    pub(crate) fn wake_pending(&mut self) {
        if !self.session.has_events() {
            return;
        }
        let mut wakers = Vec::new();
        self.collect_wakers(&mut wakers);
        for w in wakers {
            w.wake();
        }
    }
}

fn register(map: &mut StreamMap<Waker>, id: u32, cx: &Context<'_>) {
    match map.get_mut(&id) {
        Some(w) if w.will_wake(cx.waker()) => {}
        Some(w) => w.clone_from(cx.waker()),
        None => {
            map.insert(id, cx.waker().clone());
        }
    }
}
