//! The per-hardware user driver (`open/close/send/recv` of the WarpDrive RFC) and
//! [`DriverQueue`], the user API over one queue: `send`, `recv`, `recv_sync`, `call`.

use std::fmt;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::wait::{next_step, precise_sleep, ServiceEstimate, Step, Wait, WaitPolicy};

/// A request that could not be sent, handed back with the reason.
#[derive(Debug)]
pub struct SendError<M> {
    /// Why it was not sent ([`Error::RingFull`] means: receive, then try again).
    pub error: Error,
    /// The request, unchanged.
    pub msg: M,
}

/// A user driver for one kind of hardware engine.
pub trait UserDriver: Send + Sized + 'static {
    /// A request message; the same message comes back from `recv` with its result.
    type Msg: Send;

    /// Sets the driver up on an opened queue (ring state, DMA pool).
    fn open(queue: &Queue) -> Result<Self>;

    /// Writes one request into the ring and rings the doorbell.
    fn send(&mut self, queue: &Queue, msg: Self::Msg) -> Result<(), SendError<Self::Msg>>;

    /// Takes one completion if there is one. A request the device failed comes back with
    /// the failure recorded in the message; `Err` is for the queue itself failing.
    fn recv(&mut self, queue: &Queue) -> Result<Option<Self::Msg>>;

    /// Asks the device for a completion event before the caller blocks (CQ doorbell with
    /// the interrupt re-armed).
    fn arm(&mut self, _queue: &Queue) -> Result<()> {
        Ok(())
    }

    /// Requests sent and not yet received.
    fn in_flight(&self) -> usize;

    /// Service-time class of a request (e.g. algorithm and key size), for hybrid polling.
    fn class(_msg: &Self::Msg) -> usize {
        0
    }

    /// Tears the driver down before the queue is released.
    fn close(&mut self, _queue: &Queue) {}
}

/// A queue driven by a user driver: the WarpDrive user API.
pub struct DriverQueue<D: UserDriver> {
    // Field order matters: the driver (and its DMA pool) goes before the queue.
    driver: D,
    queue: Queue,
    estimate: ServiceEstimate,
    policy: WaitPolicy,
}

impl<D: UserDriver> fmt::Debug for DriverQueue<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverQueue")
            .field("queue", &self.queue)
            .field("in_flight", &self.driver.in_flight())
            .finish()
    }
}

impl<D: UserDriver> DriverQueue<D> {
    /// Opens the driver on a queue.
    pub fn open(queue: Queue, policy: WaitPolicy) -> Result<Self> {
        let driver = D::open(&queue)?;
        Ok(DriverQueue {
            driver,
            queue,
            estimate: ServiceEstimate::default(),
            policy,
        })
    }

    /// The underlying queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The driver, for engine-specific calls (DMA blocks, key layout).
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The driver, mutably.
    pub fn driver_mut(&mut self) -> &mut D {
        &mut self.driver
    }

    /// The waiting policy.
    pub fn policy(&self) -> &WaitPolicy {
        &self.policy
    }

    /// Sends one request (`wd_send`).
    pub fn send(&mut self, msg: D::Msg) -> Result<(), SendError<D::Msg>> {
        self.driver.send(&self.queue, msg)
    }

    /// Takes one completion if ready (`wd_recv`).
    pub fn recv(&mut self) -> Result<Option<D::Msg>> {
        self.driver.recv(&self.queue)
    }

    /// Asks the device for a completion event (the driver's `arm`) before the caller waits
    /// for it elsewhere (on [`Queue::event_fd`]).
    pub fn arm(&mut self) -> Result<()> {
        self.driver.arm(&self.queue)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.driver.in_flight()
    }

    /// Waits for the next completion (`wd_recv_sync`): spins briefly, then blocks on the
    /// queue's event; [`Error::Stalled`] after the policy's timeout.
    pub fn recv_sync(&mut self) -> Result<D::Msg> {
        self.wait_one(Instant::now(), usize::MAX)
    }

    /// Sends one request and waits for its completion, with hybrid polling tuned by the
    /// running estimate of this kind of request. Needs an otherwise idle queue.
    pub fn call(&mut self, msg: D::Msg) -> Result<D::Msg> {
        if self.driver.in_flight() != 0 {
            return Err(Error::InvalidArgument(
                "call() on a queue with requests in flight".into(),
            ));
        }
        let class = D::class(&msg);
        let start = Instant::now();
        self.send(msg).map_err(|e| e.error)?;
        self.wait_one(start, class)
    }

    fn wait_one(&mut self, start: Instant, class: usize) -> Result<D::Msg> {
        if self.driver.in_flight() == 0 {
            return Err(Error::InvalidArgument(
                "nothing in flight to wait for".into(),
            ));
        }
        let expected = if class == usize::MAX {
            std::time::Duration::ZERO
        } else {
            self.estimate.get(class)
        };
        let mut wait = Wait::since(start);
        loop {
            if let Some(m) = self.driver.recv(&self.queue)? {
                if class != usize::MAX {
                    wait.finish(&mut self.estimate, class);
                }
                return Ok(m);
            }
            let step = next_step(&self.policy, expected, wait.elapsed());
            match step {
                Step::Sleep(d) => precise_sleep(d),
                Step::Spin => {
                    for _ in 0..32 {
                        std::hint::spin_loop();
                    }
                }
                Step::Block(d) => {
                    self.driver.arm(&self.queue)?;
                    if let Some(m) = self.driver.recv(&self.queue)? {
                        return Ok(m);
                    }
                    self.queue.wait_event(d)?;
                }
                Step::TimedOut => return Err(Error::Stalled(self.policy.timeout)),
            }
            wait.took(step);
        }
    }

    /// Forgets everything in a forked child (no Drop runs; nothing of the parent's is
    /// touched).
    pub fn abandon(self) {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped or used again, so the queue is moved out exactly
        // once; the driver and its DMA pool are leaked on purpose (they are the parent's).
        let queue = unsafe { std::ptr::read(&me.queue) };
        queue.abandon();
    }
}

impl<D: UserDriver> Drop for DriverQueue<D> {
    fn drop(&mut self) {
        if self.queue.is_owned_by_this_process() {
            self.driver.close(&self.queue);
        }
    }
}
