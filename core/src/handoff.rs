//! Spin-then-park handoff between a caller thread and a context's owner thread.
//!
//! A parking channel round trip costs ~48 µs on the target machine while a
//! spinning handoff costs ~0.1 µs, so each receiver spins for a bounded,
//! adaptive time before it parks. Idle contexts therefore park after a few tens
//! of microseconds and burn no CPU.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Instant;

/// Bounds on how long a receiver spins before it parks, in nanoseconds.
/// Spinning is bounded by time rather than iterations because the cost of
/// `spin_loop` (x86 `pause`) varies tenfold between CPUs.
const MAX_SPIN_NS: u32 = 100_000;
const MIN_SPIN_NS: u32 = 2_000;
const START_SPIN_NS: u32 = 20_000;
/// Iterations between clock reads while spinning.
const CLOCK_EVERY: u32 = 32;

/// The sequence number and both message slots share one cache-line-aligned
/// block: each hop then moves the line that carries the message itself. With
/// separate lines per direction the round trip measured twice as slow here.
#[repr(C, align(128))]
struct Hot<A, B> {
    /// Messages sent so far. Odd: the last one went to side A (the owner
    /// thread); even: to side B (the waiting caller). The protocol is
    /// strictly alternating: every message is answered before the next.
    seq: AtomicU64,
    /// Replies (side B) are the smaller messages: first, so a reply and
    /// `seq` share the first cache line.
    to_b: UnsafeCell<MaybeUninit<B>>,
    to_a: UnsafeCell<MaybeUninit<A>>,
}

/// State written only by one receiving side.
#[repr(C, align(128))]
struct Side {
    /// Sequence number of the last message this side took.
    consumed: AtomicU64,
    /// Adaptive spin budget (ns): grows when a message arrived late in the
    /// spin, shrinks when the receiver had to park anyway.
    spin: AtomicU32,
    /// On its own line: the sender reads it on every send, which is free
    /// while it does not change, but would pull `consumed`'s line along.
    sleeping: Sleeping,
}

#[repr(align(128))]
struct Sleeping(AtomicBool);

impl Side {
    fn new() -> Self {
        Side {
            consumed: AtomicU64::new(0),
            spin: AtomicU32::new(START_SPIN_NS),
            sleeping: Sleeping(AtomicBool::new(false)),
        }
    }
}

/// A two-way, one-message-at-a-time channel between a context's owner
/// thread (side A) and the host thread waiting on it (side B).
pub(crate) struct Duplex<A, B> {
    hot: Hot<A, B>,
    a: Side,
    b: Side,
}

// SAFETY: a slot is written before `seq` is published (SeqCst) and read by
// the receiver after it observed that `seq` (acquire); because the protocol
// alternates, the receiver has moved a value out before its slot is reused.
unsafe impl<A: Send, B: Send> Send for Duplex<A, B> {}
unsafe impl<A: Send, B: Send> Sync for Duplex<A, B> {}

impl<A, B> Duplex<A, B> {
    pub(crate) fn new() -> Self {
        Duplex {
            hot: Hot {
                seq: AtomicU64::new(0),
                to_a: UnsafeCell::new(MaybeUninit::uninit()),
                to_b: UnsafeCell::new(MaybeUninit::uninit()),
            },
            a: Side::new(),
            b: Side::new(),
        }
    }

    pub(crate) fn send_a(&self, msg: A, receiver: &Thread) {
        // SAFETY: see the Sync impl.
        unsafe { (*self.hot.to_a.get()).write(msg) };
        self.publish(&self.a, receiver);
    }

    pub(crate) fn send_b(&self, msg: B, receiver: &Thread) {
        // SAFETY: see the Sync impl.
        unsafe { (*self.hot.to_b.get()).write(msg) };
        self.publish(&self.b, receiver);
    }

    fn publish(&self, to: &Side, receiver: &Thread) {
        self.hot.seq.fetch_add(1, Ordering::SeqCst);
        if to.sleeping.0.load(Ordering::SeqCst) {
            receiver.unpark();
        }
    }

    /// Side A: waits for a message (see [`Self::recv`]).
    pub(crate) fn recv_a(&self, deadline: Option<Instant>, extra: &dyn Fn() -> bool) -> Option<A> {
        self.recv(&self.a, 1, deadline, extra, |h| unsafe { (*h.to_a.get()).assume_init_read() })
    }

    /// Side B: waits for a message (see [`Self::recv`]).
    pub(crate) fn recv_b(&self, deadline: Option<Instant>, extra: &dyn Fn() -> bool) -> Option<B> {
        self.recv(&self.b, 0, deadline, extra, |h| unsafe { (*h.to_b.get()).assume_init_read() })
    }

    fn try_take<T>(&self, side: &Side, parity: u64, take: &impl Fn(&Hot<A, B>) -> T) -> Option<T> {
        let seq = self.hot.seq.load(Ordering::Acquire);
        if seq % 2 == parity && seq > side.consumed.load(Ordering::Relaxed) {
            side.consumed.store(seq, Ordering::Relaxed);
            Some(take(&self.hot))
        } else {
            None
        }
    }

    /// Waits for a message until `deadline`, spinning first and then
    /// parking. `extra` is polled too: when it returns true the wait ends
    /// with `None` (side signals: async completions, termination).
    fn recv<T>(
        &self,
        side: &Side,
        parity: u64,
        deadline: Option<Instant>,
        extra: &dyn Fn() -> bool,
        take: impl Fn(&Hot<A, B>) -> T,
    ) -> Option<T> {
        let budget = side.spin.load(Ordering::Relaxed);
        let mut start: Option<Instant> = None;
        let mut i = 0u32;
        loop {
            if let Some(v) = self.try_take(side, parity, &take) {
                if let Some(t) = start {
                    if t.elapsed().as_nanos() as u32 > budget / 2 {
                        side.spin.store(budget.saturating_mul(2).min(MAX_SPIN_NS), Ordering::Relaxed);
                    }
                }
                return Some(v);
            }
            if extra() {
                return None;
            }
            std::hint::spin_loop();
            i += 1;
            if i.is_multiple_of(CLOCK_EVERY) {
                let t = *start.get_or_insert_with(Instant::now);
                if t.elapsed().as_nanos() as u32 >= budget {
                    break;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
            }
        }
        side.spin.store((budget / 2).max(MIN_SPIN_NS), Ordering::Relaxed);
        loop {
            side.sleeping.0.store(true, Ordering::SeqCst);
            if let Some(v) = self.try_take(side, parity, &take) {
                side.sleeping.0.store(false, Ordering::SeqCst);
                return Some(v);
            }
            if extra() {
                side.sleeping.0.store(false, Ordering::SeqCst);
                return None;
            }
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        side.sleeping.0.store(false, Ordering::SeqCst);
                        return None;
                    }
                    std::thread::park_timeout(d - now);
                }
                None => std::thread::park(),
            }
            side.sleeping.0.store(false, Ordering::SeqCst);
        }
    }

    /// Wakes side A if it is parked (after a side signal was raised).
    pub(crate) fn wake_a(&self, receiver: &Thread) {
        if self.a.sleeping.0.load(Ordering::SeqCst) {
            receiver.unpark();
        }
    }
}

impl<A, B> Drop for Duplex<A, B> {
    fn drop(&mut self) {
        // A message nobody received (a Shutdown sent to an owner thread that
        // had already exited) is dropped here.
        let seq = *self.hot.seq.get_mut();
        if seq % 2 == 1 && seq > *self.a.consumed.get_mut() {
            unsafe { self.hot.to_a.get_mut().assume_init_drop() };
        } else if seq.is_multiple_of(2) && seq > *self.b.consumed.get_mut() {
            unsafe { self.hot.to_b.get_mut().assume_init_drop() };
        }
    }
}

/// The handoff alone: `n` round trips between two threads through a
/// [`Duplex`], returning the mean. The floor under every request; used by
/// the core benchmark.
#[doc(hidden)]
pub fn round_trip_floor(n: u32) -> std::time::Duration {
    use std::sync::Arc;
    let a: Arc<Duplex<u64, u64>> = Arc::new(Duplex::new());
    let me = std::thread::current();
    let a2 = a.clone();
    let t = std::thread::spawn(move || loop {
        let v = a2.recv_a(None, &|| false).unwrap();
        a2.send_b(v + 1, &me);
        if v == u64::MAX - 1 {
            break;
        }
    });
    let other = t.thread().clone();
    let start = Instant::now();
    for i in 0..n as u64 {
        a.send_a(i, &other);
        a.recv_b(None, &|| false).unwrap();
    }
    let el = start.elapsed() / n;
    a.send_a(u64::MAX - 1, &other);
    a.recv_b(None, &|| false);
    t.join().unwrap();
    el
}
