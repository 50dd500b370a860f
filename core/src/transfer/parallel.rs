//! Large copies on two threads: one core's copy is bound by its own
//! memory latency, not by the machine's bandwidth.

use std::sync::atomic::{AtomicU64, Ordering};

use super::advice::populate;

/// The piece of a large copy each thread takes at a time: the huge page
/// size, so each piece's prefault maps whole huge pages.
pub(super) const CHUNK: usize = 2 << 20;

/// Copies `src` to `dst` on this thread and one helper thread, each taking
/// [`CHUNK`]s from its own end, prefaulting each that starts at or past
/// `faulted` (the bytes of `dst` already in memory: 0 for new memory,
/// `usize::MAX` for memory used before).
///
/// Why a second thread: one core's memcpy is bound by its own memory
/// latency, not by the machine's bandwidth, and so is the kernel zeroing
/// the pages of fresh memory. Measured here, in C, 64 MiB on 2 cores: a
/// memcpy into touched memory 8.7 ms on one thread, 4.7 on two; into fresh
/// memory, prefaulted then copied, 12.8 ms on one, 7.8 on two, and with
/// huge pages off (as Ruby has them) 20.9 and 10.7.
///
/// The helper only reads `src` and writes `dst` and is joined before this
/// returns, so for the caller this is one copy. If the thread cannot be
/// made, or is not scheduled, this thread takes every chunk itself. It
/// starts with every signal blocked, so it never runs a host's signal
/// handler.
///
/// # Safety
/// As [`copy_to_fresh`](super::copy_to_fresh); `dst` need not be fresh
/// when `faulted` covers it.
pub(super) unsafe fn copy_in_parallel(dst: *mut u8, src: &[u8], faulted: usize) {
    let len = src.len();
    // Chunks start at a CHUNK-aligned address; the bytes before the first
    // and after the last are copied by this thread at the end.
    let head = (dst as usize).next_multiple_of(CHUNK) - dst as usize;
    let chunks = len.saturating_sub(head) / CHUNK;
    let job = Job { dst: dst as usize, src: src.as_ptr() as usize, head, faulted, next: AtomicU64::new(chunks as u64) };
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new().name("polyracer-copy".into()).stack_size(64 << 10);
        let _ = without_signals(|| helper.spawn_scoped(scope, || job.run(Side::Back)));
        job.run(Side::Front);
        // SAFETY: both edges lie inside `dst` / `src` (the caller's
        // contract) and no chunk covers them.
        unsafe {
            let tail = head + chunks * CHUNK;
            std::ptr::copy_nonoverlapping(src.as_ptr(), dst, head.min(len));
            if tail < len {
                std::ptr::copy_nonoverlapping(src.as_ptr().add(tail), dst.add(tail), len - tail);
            }
        }
    });
}

/// Which end of the chunks a thread takes from.
#[derive(Clone, Copy)]
enum Side {
    Front,
    Back,
}

/// One parallel copy: addresses as integers (the helper thread gets them
/// by reference; [`copy_in_parallel`]'s caller keeps both alive until the
/// scope joins), and the chunks not yet taken, `front << 32 | back`.
struct Job {
    dst: usize,
    src: usize,
    head: usize,
    faulted: usize,
    next: AtomicU64,
}

impl Job {
    /// Takes chunks from `side` until none are left, copying each.
    fn run(&self, side: Side) {
        while let Some(i) = self.take(side) {
            let off = self.head + i * CHUNK;
            let to = (self.dst + off) as *mut u8;
            if off + CHUNK > self.faulted {
                populate(to, CHUNK);
            }
            // SAFETY: chunk `i` lies inside both buffers and is taken by
            // exactly one thread.
            unsafe { std::ptr::copy_nonoverlapping((self.src + off) as *const u8, to, CHUNK) };
        }
    }

    /// The next chunk from `side`, if any is left.
    fn take(&self, side: Side) -> Option<usize> {
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let (front, back) = (cur >> 32, cur & u32::MAX as u64);
            if front >= back {
                return None;
            }
            let (next, i) = match side {
                Side::Front => ((front + 1) << 32 | back, front),
                Side::Back => (front << 32 | (back - 1), back - 1),
            };
            match self.next.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(i as usize),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// Runs `f` (which starts a thread) with every signal blocked on this
/// thread, so the new thread inherits a full mask; then restores the mask.
#[cfg(unix)]
pub(super) fn without_signals<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sigset_t is plain data; the masks are this thread's own.
    unsafe {
        let (mut all, mut old) = (std::mem::zeroed::<libc::sigset_t>(), std::mem::zeroed::<libc::sigset_t>());
        libc::sigfillset(&mut all);
        let masked = libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old) == 0;
        let out = f();
        if masked {
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
        out
    }
}

#[cfg(not(unix))]
pub(super) fn without_signals<T>(f: impl FnOnce() -> T) -> T {
    f()
}
