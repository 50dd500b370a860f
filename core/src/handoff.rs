//! Spin-then-park handoff between a caller thread and a context's owner thread.
//!
//! A parking channel round trip costs ~48 µs on the target machine while a
//! spinning handoff costs ~0.1 µs, so each receiver spins for a bounded,
//! adaptive time before it parks. Idle contexts therefore park after a few tens
//! of microseconds and burn no CPU.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::Thread;
use std::time::Instant;

/// Upper bound on spinning before parking, in iterations of `spin_loop`.
const MAX_SPIN: u32 = 1 << 15;
const MIN_SPIN: u32 = 1 << 6;

/// A one-slot mailbox: one sender at a time, one receiver at a time.
///
/// The protocol that uses it guarantees exclusivity: the owner thread is the
/// only receiver of the request box, and the caller holding the context's lane
/// is the only receiver of the reply box.
pub(crate) struct Mailbox<T> {
    full: AtomicBool,
    sleeping: AtomicBool,
    slot: UnsafeCell<Option<T>>,
    /// Adaptive spin budget: grows when a spin succeeded, shrinks when the
    /// receiver had to park anyway.
    spin: AtomicU32,
}

// SAFETY: access to `slot` is serialised by the `full` flag (acquire/release):
// the sender writes only while `full` is false, the receiver reads only after
// observing `full` true, and the protocol has one sender and one receiver.
unsafe impl<T: Send> Send for Mailbox<T> {}
unsafe impl<T: Send> Sync for Mailbox<T> {}

impl<T> Mailbox<T> {
    pub(crate) fn new() -> Self {
        Mailbox {
            full: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            slot: UnsafeCell::new(None),
            spin: AtomicU32::new(MAX_SPIN / 4),
        }
    }

    /// Puts a message and wakes `receiver` if it is parked.
    pub(crate) fn send(&self, msg: T, receiver: &Thread) {
        // SAFETY: see the Sync impl; the receiver has taken the previous value.
        unsafe { *self.slot.get() = Some(msg) };
        self.full.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            receiver.unpark();
        }
    }

    pub(crate) fn try_take(&self) -> Option<T> {
        if self.full.load(Ordering::Acquire) {
            // SAFETY: `full` was set after the slot was written.
            let v = unsafe { (*self.slot.get()).take() };
            self.full.store(false, Ordering::Release);
            v
        } else {
            None
        }
    }

    /// Waits for a message until `deadline`. `extra` is polled as well: when
    /// it returns true the wait ends with `None` (used for side signals such
    /// as async completions or a termination request).
    pub(crate) fn recv(&self, deadline: Option<Instant>, extra: &dyn Fn() -> bool) -> Option<T> {
        let budget = self.spin.load(Ordering::Relaxed);
        let mut i = 0;
        while i < budget {
            if let Some(v) = self.try_take() {
                if i > budget / 2 {
                    self.spin
                        .store((budget * 2).min(MAX_SPIN), Ordering::Relaxed);
                }
                return Some(v);
            }
            if extra() {
                return None;
            }
            std::hint::spin_loop();
            i += 1;
        }
        self.spin
            .store((budget / 2).max(MIN_SPIN), Ordering::Relaxed);
        loop {
            self.sleeping.store(true, Ordering::SeqCst);
            if let Some(v) = self.try_take() {
                self.sleeping.store(false, Ordering::SeqCst);
                return Some(v);
            }
            if extra() {
                self.sleeping.store(false, Ordering::SeqCst);
                return None;
            }
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.sleeping.store(false, Ordering::SeqCst);
                        return None;
                    }
                    std::thread::park_timeout(d - now);
                }
                None => std::thread::park(),
            }
            self.sleeping.store(false, Ordering::SeqCst);
        }
    }

    /// Wakes the receiver if it is parked (after a side signal was raised).
    pub(crate) fn wake(&self, receiver: &Thread) {
        if self.sleeping.load(Ordering::SeqCst) {
            receiver.unpark();
        }
    }
}
