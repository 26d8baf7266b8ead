//! The per-thread queue pool.
//!
//! Each thread keeps its own queue of a pool in a thread-local slot: the hot path takes no
//! lock. Queues come from a bounded global set (never more open than the pool's limit, and
//! the device refuses beyond its available instances); when every queue is taken the caller
//! gets [`Error::NoFreeQueue`] and falls back to software. A thread's queue returns to the
//! set when the thread exits. After `fork()` the child forgets every inherited queue without
//! touching it and opens its own.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::driver::{DriverQueue, UserDriver};
use crate::error::{Error, Result};
use crate::fork::Epoch;

/// Opens a driven queue for a pool.
pub type Opener<D> = Box<dyn Fn() -> Result<DriverQueue<D>> + Send + Sync>;

struct Shared<D: UserDriver> {
    epoch: Epoch,
    idle: Vec<DriverQueue<D>>,
    open: usize,
}

struct Inner<D: UserDriver> {
    id: usize,
    name: String,
    limit: usize,
    opener: Opener<D>,
    shared: Mutex<Shared<D>>,
}

impl<D: UserDriver> Inner<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared<D>> {
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if !g.epoch.is_current() {
            // Inherited from the parent: forget, never touch.
            for q in g.idle.drain(..) {
                q.abandon();
            }
            g.open = 0;
            g.epoch = Epoch::current();
        }
        g
    }

    fn give_back(&self, q: DriverQueue<D>) {
        let mut g = self.lock();
        g.idle.push(q);
    }

    fn discard(&self, q: DriverQueue<D>) {
        let mut g = self.lock();
        g.open = g.open.saturating_sub(1);
        drop(g);
        drop(q);
    }
}

trait Home: Send + Sync {
    fn give_back_any(&self, q: Box<dyn Any>);
}

impl<D: UserDriver> Home for Inner<D> {
    fn give_back_any(&self, q: Box<dyn Any>) {
        if let Ok(q) = q.downcast::<DriverQueue<D>>() {
            self.give_back(*q);
        }
    }
}

struct Slot {
    pool: usize,
    epoch: Epoch,
    queue: Option<Box<dyn Any>>,
    home: Weak<dyn Home>,
    abandon: fn(Box<dyn Any>),
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(q) = self.queue.take() else { return };
        if !self.epoch.is_current() {
            (self.abandon)(q);
            return;
        }
        match self.home.upgrade() {
            Some(home) => home.give_back_any(q),
            None => drop(q),
        }
    }
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

fn abandon_any<D: UserDriver>(q: Box<dyn Any>) {
    if let Ok(q) = q.downcast::<DriverQueue<D>>() {
        q.abandon();
    }
}

/// A bounded set of queues of one kind, handed to threads one each.
pub struct QueuePool<D: UserDriver> {
    inner: Arc<Inner<D>>,
}

impl<D: UserDriver> fmt::Debug for QueuePool<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuePool")
            .field("name", &self.inner.name)
            .field("limit", &self.inner.limit)
            .field("open", &self.open_queues())
            .finish()
    }
}

impl<D: UserDriver> QueuePool<D> {
    /// A pool that opens at most `limit` queues with `opener`.
    pub fn new(name: impl Into<String>, limit: usize, opener: Opener<D>) -> Self {
        QueuePool {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                name: name.into(),
                limit,
                opener,
                shared: Mutex::new(Shared {
                    epoch: Epoch::current(),
                    idle: Vec::new(),
                    open: 0,
                }),
            }),
        }
    }

    /// Queues open in this process now (held by threads or idle).
    pub fn open_queues(&self) -> usize {
        self.inner.lock().open
    }

    /// Idle queues in the global set now.
    pub fn idle_queues(&self) -> usize {
        self.inner.lock().idle.len()
    }

    fn acquire(&self) -> Result<DriverQueue<D>> {
        let mut g = self.inner.lock();
        if let Some(q) = g.idle.pop() {
            return Ok(q);
        }
        if g.open >= self.inner.limit {
            return Err(Error::NoFreeQueue(format!(
                "{}: all {} queues of the pool are taken",
                self.inner.name, self.inner.limit
            )));
        }
        g.open += 1;
        drop(g);
        match (self.inner.opener)() {
            Ok(q) => Ok(q),
            Err(e) => {
                self.inner.lock().open -= 1;
                Err(e)
            }
        }
    }

    /// Runs `f` on the calling thread's queue, taking one from the set first if the thread
    /// has none. A queue whose use failed with a queue-level error is released, not reused.
    pub fn with<R>(&self, f: impl FnOnce(&mut DriverQueue<D>) -> Result<R>) -> Result<R> {
        let id = self.inner.id;
        let taken: Option<Box<dyn Any>> = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            let i = slots.iter().position(|sl| sl.pool == id)?;
            if !slots[i].epoch.is_current() {
                slots.swap_remove(i);
                return None;
            }
            slots[i].queue.take()
        });
        let mut q: Box<dyn Any> = match taken {
            Some(q) => q,
            None => Box::new(self.acquire()?),
        };
        let dq = q
            .downcast_mut::<DriverQueue<D>>()
            .expect("slot holds this pool's queue type");
        let result = f(dq);
        if let Err(e) = &result {
            if is_queue_fatal(e) {
                crate::wd_log!(Warn, "{}: dropping queue after error: {e}", self.inner.name);
                if let Ok(q) = q.downcast::<DriverQueue<D>>() {
                    self.inner.discard(*q);
                }
                return result;
            }
        }
        self.put_back(q);
        result
    }

    fn put_back(&self, q: Box<dyn Any>) {
        let id = self.inner.id;
        // Made only for a new slot (the first use on a thread), not on every call.
        let home = || -> Weak<dyn Home> {
            let strong: Arc<dyn Home> = self.inner.clone();
            Arc::downgrade(&strong)
        };
        let mut q = Some(q);
        // If the thread-local set is gone (thread exiting), the queue goes back to the set.
        let _ = SLOTS.try_with(|s| {
            let mut slots = s.borrow_mut();
            match slots.iter_mut().find(|sl| sl.pool == id) {
                Some(sl) if sl.queue.is_none() => sl.queue = q.take(),
                Some(_) => {}
                None => slots.push(Slot {
                    pool: id,
                    epoch: Epoch::current(),
                    queue: q.take(),
                    home: home(),
                    abandon: abandon_any::<D>,
                }),
            }
        });
        if let Some(q) = q {
            self.inner.give_back_any(q);
        }
    }

    /// Returns the calling thread's queue to the set now (instead of at thread exit).
    pub fn release_thread_queue(&self) {
        let id = self.inner.id;
        let q = SLOTS.with(|s| {
            let mut slots = s.borrow_mut();
            let i = slots.iter().position(|sl| sl.pool == id)?;
            slots.swap_remove(i).queue.take()
        });
        if let Some(q) = q {
            self.inner.give_back_any(q);
        }
    }

    /// Releases every idle queue of the set (threads keep theirs until they exit).
    pub fn drain_idle(&self) {
        let idle: Vec<_> = {
            let mut g = self.inner.lock();
            let v: Vec<_> = g.idle.drain(..).collect();
            g.open -= v.len();
            v
        };
        drop(idle);
    }
}

/// Errors after which a queue is not trusted again.
pub fn is_queue_fatal(e: &Error) -> bool {
    matches!(
        e,
        Error::Stalled(_)
            | Error::QueueStopped(_)
            | Error::DeviceGone(_)
            | Error::Protocol(_)
            | Error::Io { .. }
    )
}
