//! Copying a large byte buffer into memory that was just allocated for it.
//!
//! A fresh allocation of many megabytes is new anonymous memory: the first
//! write to each 4 KiB page faults, and for 64 MiB those 16,384 faults cost
//! several times the copy itself (measured here, in C: malloc + memcpy of
//! 64 MiB 29 ms; a memcpy into memory already touched under 5 ms on two
//! threads). So the range is advised first (transparent huge pages), then
//! split into 2 MiB chunks that this thread and one helper take from
//! opposite ends and copy: one core alone is bound by its own memory
//! latency, both the kernel's page zeroing and the copy. Where the process
//! gets huge pages, the copy's own writes fault them in; where it does not
//! (Ruby turns them off for itself, for copy-on-write after fork), each
//! chunk is prefaulted first in one call (`MADV_POPULATE_WRITE`, Linux
//! 5.14+) instead of a fault per 4 KiB, or the pages come faulted in
//! beforehand and are moved under the buffer ([`ready_pages`]). From 256
//! KiB to 32 MiB a copy is prefaulted, on one thread, when the last page
//! of its memory is not mapped in yet, and for hosts that free buffers
//! only at a collection ([`HostFrees::Collected`]) written with streaming
//! stores. Every binding
//! copies bytes this way: core into the ArrayBuffers it makes from host
//! bytes, the bindings into the host strings and buffers they make from JS
//! bytes.
//!
//! Memory core allocates itself (host bytes going in) can do better than
//! fresh memory: the kernel zeroes every page it hands out, half the cost
//! of a fresh 64 MiB copy. So the last two large buffers V8 frees are kept
//! as spares (`LARGE`) and the next large copy in of about their size
//! reuses one, copied on two threads without prefaulting; buffers from
//! 256 KiB are kept the same way, up to 16 MiB of them (`MEDIUM_SPARES`).
//! Two buffers of at most 128 MiB each and 16 MiB of smaller ones are the
//! most a process keeps after its JS let go of its bytes.

use super::advice::{advise_huge, last_page_resident, populate};
use super::parallel::copy_in_parallel;
use super::ready_pages;

/// From this size glibc's malloc always maps memory of its own for an
/// allocation (its mmap threshold rises to at most 32 MiB), so the advice
/// only touches that mapping. Smaller ones may come from its heap, where
/// advice would split the heap's mapping and give huge pages to whatever
/// else lives there; they are only prefaulted (from [`MEDIUM`]), which
/// changes no mapping.
const BULK: usize = 32 << 20;

/// The largest buffer kept as a spare.
const SPARE_MAX: usize = 128 << 20;

/// The smallest buffer kept as a spare or prefaulted. Below [`BULK`]
/// glibc serves buffers from its heap, but when V8's GC frees a batch of them at once
/// the heap's top grows past its trim threshold and goes back to the
/// kernel, so the next copies fault every page in again: Ruby passing
/// 1 MiB in a loop took 0.47 ms a call, 0.12 with trimming off, against a
/// memcpy's 0.03.
const MEDIUM: usize = 256 << 10;

/// The last large buffers freed by V8 (two: V8 frees a call's buffer
/// during the GC of a later call, so with one a loop passing 64 MiB got a
/// spare only every other call, 9 ms then 16.5 ms), and the last medium
/// ones, up to 16 MiB (a GC frees a batch of them). Backing stores are
/// freed on whichever thread V8 chooses.
static LARGE: std::sync::Mutex<Pool<2>> = std::sync::Mutex::new(Pool::new(2 * SPARE_MAX));
static MEDIUM_SPARES: std::sync::Mutex<Pool<16>> = std::sync::Mutex::new(Pool::new(16 << 20));

/// Up to `N` spare buffers holding at most `budget` bytes, oldest first.
/// Slots, not a `Vec`: nothing allocates while the lock is held (a child
/// forked meanwhile would find it held forever).
struct Pool<const N: usize> {
    slots: [Option<Vec<u8>>; N],
    len: usize,
    bytes: usize,
    budget: usize,
}

impl<const N: usize> Pool<N> {
    const fn new(budget: usize) -> Self {
        Pool { slots: [const { None }; N], len: 0, bytes: 0, budget }
    }

    /// The newest spare with room for `len` bytes and at most 1/8 of it
    /// unused (a spare much larger than the copy would hold memory V8
    /// does not count).
    fn take(&mut self, len: usize) -> Option<Vec<u8>> {
        let fits = |v: &Vec<u8>| v.capacity() >= len && v.capacity() - len <= len / 8;
        let i = (0..self.len).rev().find(|&i| self.slots[i].as_ref().is_some_and(fits))?;
        self.slots[i..self.len].rotate_left(1);
        self.len -= 1;
        let v = self.slots[self.len].take()?;
        self.bytes -= v.capacity();
        Some(v)
    }

    /// Keeps `v` as the newest spare, giving back the oldest ones it
    /// displaces (for the caller to free outside the lock).
    fn put(&mut self, v: Vec<u8>) -> [Option<Vec<u8>>; N] {
        let mut out = [const { None }; N];
        let mut k = 0;
        while self.len > 0 && (self.len == N || self.bytes + v.capacity() > self.budget) {
            self.slots[..self.len].rotate_left(1);
            self.len -= 1;
            if let Some(old) = self.slots[self.len].take() {
                self.bytes -= old.capacity();
                out[k] = Some(old);
                k += 1;
            }
        }
        if v.capacity() <= self.budget {
            self.bytes += v.capacity();
            self.slots[self.len] = Some(v);
            self.len += 1;
        } else {
            out[k] = Some(v);
        }
        out
    }
}

/// When a host gives back the memory of the buffers it frees, which
/// decides how a copy into a new one is best written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostFrees {
    /// As soon as the last reference goes (reference counting: CPython,
    /// Swift, Rust): the next buffer of about the same size usually lands
    /// in the memory the last one left in the cache.
    Promptly,
    /// At a later collection, many at once (Ruby's GC, V8's in Node): the
    /// next buffer lands in memory last written tens of megabytes of
    /// allocations ago, long gone from the cache.
    Collected,
}

/// Copies `src` into `dst`, a buffer of `src.len()` bytes that was just
/// allocated by a host that frees its buffers as `frees` says and has not
/// been written yet.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and must not
/// overlap `src`.
pub unsafe fn copy_to_fresh(dst: *mut u8, src: &[u8], frees: HostFrees) {
    if src.len() >= BULK {
        // With huge pages the copy's own writes fault them in 2 MiB at a
        // time, and prefaulting each chunk first only made it slower: 64 MiB
        // out of Node, timed in turns with a memcpy, four runs of each
        // build alternately, 2.16–2.41x the memcpy prefaulting, 1.80–2.20x
        // not; out of Python 1.21–1.26x → 0.87–1.06x (two threads against
        // one). In C on two threads: 6.4–9.8 ms → 4.7–5.5 ms.
        if advise_huge(dst, src.len()) {
            // SAFETY: the caller's contract.
            unsafe { copy_in_parallel(dst, src, usize::MAX) };
            return;
        }
        // Without huge pages, pages made ready beforehand are moved under
        // the buffer where that is safe, and the next copy's are made.
        let (own, idle) = (ready_pages::own_mapping(dst, src.len()), ready_pages::idle());
        // SAFETY: the caller's contract; `own` is `dst`'s.
        if !own.is_some_and(|own| unsafe { ready_pages::copy_by_moving(own, dst, src) }) {
            // SAFETY: the caller's contract.
            unsafe { copy_in_parallel(dst, src, 0) };
        }
        if own.is_some() {
            ready_pages::prepare(src.len(), idle);
        }
        return;
    }
    // Below BULK the buffer may be heap memory used before, where the
    // prefault only walks pages already there (a third of Ruby's 1 MiB
    // String out, whose heap is mostly reused), or memory the heap got
    // back from the kernel, where it saves a fault per page. So ask the
    // kernel about one page, the last (malloc writes its header at the
    // start of a block, so the first is always there): median / mean ms
    // of 1 MiB out, prefaulting always → only when that page is missing,
    // Ruby 0.13–0.16 / 0.22 → 0.08–0.10 / 0.17, Node 0.12–0.17 / 0.19–0.23
    // → 0.07 / 0.13–0.16. (Asking about every page lost the gain.)
    if src.len() >= MEDIUM && !last_page_resident(dst, src.len()) {
        populate(dst, src.len());
    }
    if src.len() >= MEDIUM && frees == HostFrees::Collected {
        // SAFETY: the caller's contract.
        unsafe { copy_streaming(dst, src) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// Copies `src` to `dst` with streaming (non-temporal) stores, which write
/// whole cache lines to memory without reading them first. A plain copy
/// into memory that is not in the cache reads every line of the
/// destination before overwriting it: 1 MiB out into a ring of buffers
/// larger than the last-level cache (as a host that frees at a collection
/// makes) took 0.076 ms with memcpy, 0.040 streaming; but into memory
/// still in the cache streaming is slower (0.039 against 0.025), so only
/// hosts that free at a collection get it. Measured through the bindings,
/// 1 MiB out, median ms: Ruby 0.062–0.075 → 0.043–0.047, Node 0.07 →
/// 0.05; Python, which frees promptly, 0.027 → 0.041 had it streamed.
///
/// # Safety
/// As [`copy_to_fresh`].
#[cfg(target_arch = "x86_64")]
unsafe fn copy_streaming(dst: *mut u8, src: &[u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    let len = src.len();
    // Streaming stores need 16-byte aligned addresses; whole lines from
    // the first 64-byte boundary, the edges copied plainly.
    let head = ((dst as usize).next_multiple_of(64) - dst as usize).min(len);
    // SAFETY: every access lies inside `src` / `dst` (the caller's
    // contract); the stores are to 64-byte aligned addresses (SSE2 is part
    // of x86-64).
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), dst, head);
        let mut i = head;
        while i + 64 <= len {
            let from = src.as_ptr().add(i).cast::<__m128i>();
            let to = dst.add(i).cast::<__m128i>();
            let line = [
                _mm_loadu_si128(from),
                _mm_loadu_si128(from.add(1)),
                _mm_loadu_si128(from.add(2)),
                _mm_loadu_si128(from.add(3)),
            ];
            for (k, part) in line.into_iter().enumerate() {
                _mm_stream_si128(to.add(k), part);
            }
            i += 64;
        }
        // Streaming stores are weakly ordered: fence them before the
        // buffer is handed to the host (and maybe another thread).
        _mm_sfence();
        std::ptr::copy_nonoverlapping(src.as_ptr().add(i), dst.add(i), len - i);
    }
}

/// Elsewhere a plain copy (the measurements above are x86-64's).
#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_streaming(dst: *mut u8, src: &[u8]) {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// `bytes.to_vec()`, copied with [`copy_to_fresh`] (faster for large
/// buffers; Rust frees a `Vec` promptly). Its capacity is its length.
pub fn fresh_copy(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::<u8>::with_capacity(bytes.len());
    // SAFETY: `v` has room for `bytes.len()` bytes, all written by the copy
    // before `set_len`.
    unsafe {
        copy_to_fresh(v.as_mut_ptr(), bytes, HostFrees::Promptly);
        v.set_len(bytes.len());
    }
    v
}

/// A copy of `bytes` in a buffer core may have had before: a spare when
/// `bytes` are at least [`MEDIUM`] and one fits, else new memory. For the
/// ArrayBuffers core makes from host bytes, whose deleter gives it back
/// with [`recycle`]. (Not for Node's external ArrayBuffers: their
/// finalizers wait for the event loop, and a synchronous loop of 64 MiB
/// copies out then held every buffer.)
pub(crate) fn filled(bytes: &[u8]) -> Vec<u8> {
    let pool = |len| match len {
        n if n >= BULK => LARGE.lock().ok()?.take(n),
        n if n >= MEDIUM => MEDIUM_SPARES.lock().ok()?.take(n),
        _ => None,
    };
    let (mut v, reused) = match pool(bytes.len()) {
        Some(spare) => (spare, true),
        None => (Vec::with_capacity(bytes.len()), false),
    };
    // V8 frees backing stores at a collection, so a spare (touched memory:
    // no prefault; kept only from MEDIUM) was last written long ago and is
    // streamed into like new memory is. 1 MiB in, median ms, plain copy →
    // streamed: Python 0.069–0.089 → 0.043–0.046, Ruby 0.056–0.077 →
    // 0.044–0.063, Node 0.067–0.092 → 0.050–0.058.
    // SAFETY: `v` has room for `bytes` (`Pool::take`, or just made), all
    // written by the copy before `set_len`.
    unsafe {
        if !reused {
            copy_to_fresh(v.as_mut_ptr(), bytes, HostFrees::Collected);
        } else if bytes.len() >= BULK {
            copy_in_parallel(v.as_mut_ptr(), bytes, usize::MAX);
        } else {
            copy_streaming(v.as_mut_ptr(), bytes);
        }
        v.set_len(bytes.len());
    }
    v
}

/// Takes back a buffer made by [`filled`] that is no longer used: one of
/// at least [`MEDIUM`] becomes a spare (displacing the oldest if the pool
/// is full), others are freed.
pub(crate) fn recycle(v: Vec<u8>) {
    // Displaced spares are dropped outside the lock: freeing 64 MiB takes
    // a while.
    match v.capacity() {
        n if (BULK..=SPARE_MAX).contains(&n) => drop(LARGE.lock().map(|mut p| p.put(v))),
        n if (MEDIUM..BULK).contains(&n) => drop(MEDIUM_SPARES.lock().map(|mut p| p.put(v))),
        _ => {}
    }
}
