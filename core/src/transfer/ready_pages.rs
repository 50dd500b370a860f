//! Large copies into a new host buffer without the host's page faults:
//! the bytes are copied into pages faulted in beforehand, and those pages
//! are then moved under the buffer (`mremap`), in place of the pages the
//! kernel would otherwise fault in and zero one by one during the copy.
//!
//! Where this applies: a process that gets no transparent huge pages
//! (Ruby turns them off for itself, for copy-on-write after `fork`), where
//! a new 64 MiB buffer is 16,384 small pages, each zeroed on its first
//! write, which costs more than the copy: 64 MiB into a new Ruby String
//! took 16–19 ms a call against a memcpy's 5–7. After such a copy the
//! next one's pages are faulted in on a background thread, while the host
//! does its own work: with 30 ms of it between calls the copy took 9–10
//! ms (median; 4–5 when the host's collector freed nothing during it).
//! The thread is started only when the host's pace leaves it time (the
//! last gap between copies at least 1.5× what the last fill took, about
//! 20 ms for 64 MiB here): calls back to back, or 5–10 ms apart, copy as
//! before (16–20 ms either way), since a fill that cannot finish only
//! competes with the next copy and with the host freeing the last buffer.
//! The fill costs the same CPU the copy would have spent faulting the
//! pages in, on another core.
//!
//! **When moving pages is safe.** Only under a buffer glibc's malloc
//! mapped for it alone (every allocation from 32 MiB): `malloc` is
//! glibc's, the chunk header before the buffer is exactly what glibc
//! writes for such a chunk, and `/proc/self/maps` shows the chunk inside
//! a private anonymous mapping. glibc unmaps such a chunk whole when it is
//! freed, so the moved pages go with it. Memory an allocator keeps and
//! reuses (glibc's heap, jemalloc's extents) is never touched: there the
//! moved pages would split its mapping for good. Only whole pages inside
//! the buffer are replaced, by private anonymous pages holding the bytes
//! the copy would have written, so nothing can tell (`realloc` of the
//! buffer still works: glibc moves the chunk with `mremap`, or where the
//! kernel will not move several mappings at once, allocates, copies and
//! frees).
//!
//! At most one set of ready pages is kept, sized for the last large copy
//! (at most 128 MiB), until the next large copy takes it.

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
pub(super) use linux::*;

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
pub(super) use other::*;

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
mod linux {
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::Instant;

    use super::super::advice::PAGE;
    use super::super::parallel::{copy_in_parallel, without_signals, CHUNK};

    /// The largest copy pages are made ready for (as the largest spare
    /// `bulk` keeps going in).
    const READY_MAX: usize = 128 << 20;

    /// What glibc writes before the memory it returns: on 64-bit targets
    /// two words, the alignment slack (0 for an `mmap`ed chunk here) and
    /// the chunk's size with its flags in the low three bits.
    const HEADER: usize = 16;
    /// glibc's flag for a chunk it mapped for itself.
    const IS_MMAPPED: usize = 2;

    /// A glibc chunk of its own mapping, which starts at `base`.
    #[derive(Clone, Copy, Debug)]
    pub(in super::super) struct OwnMapping {
        base: usize,
    }

    /// The mapping `dst` was allocated in, if it is one glibc's malloc made
    /// for a buffer of `len` bytes alone.
    pub(in super::super) fn own_mapping(dst: *mut u8, len: usize) -> Option<OwnMapping> {
        if (dst as usize) % PAGE != HEADER || !malloc_is_glibc() {
            return None;
        }
        let base = dst as usize - HEADER;
        // SAFETY: `base` is the start of the page `dst` lies in, which is
        // mapped (the caller may write `dst`); volatile, so the reads are
        // made as written.
        let (slack, size) = unsafe {
            (std::ptr::read_volatile(base as *const usize), std::ptr::read_volatile((base + 8) as *const usize))
        };
        // Exactly what glibc writes for a chunk it maps: no slack, only the
        // mmapped flag, and the request plus header rounded up to pages.
        let total = size & !7;
        let chunk = slack == 0
            && size & 7 == IS_MMAPPED
            && total % PAGE == 0
            && (len + HEADER..=len + HEADER + 2 * PAGE).contains(&total);
        (chunk && private_anonymous(base, total)).then_some(OwnMapping { base })
    }

    /// Whether `malloc` in this process is glibc's (not jemalloc's or
    /// another allocator's, linked in or preloaded), asked once.
    fn malloc_is_glibc() -> bool {
        static GLIBC: OnceLock<bool> = OnceLock::new();
        *GLIBC.get_or_init(|| {
            // SAFETY: `info` is plain data dladdr fills in; the name it
            // points to lives as long as the library stays loaded (libc).
            unsafe {
                let mut info = std::mem::zeroed::<libc::Dl_info>();
                libc::dladdr(libc::malloc as *const libc::c_void, &mut info) != 0
                    && !info.dli_fname.is_null()
                    && std::ffi::CStr::from_ptr(info.dli_fname).to_bytes().windows(7).any(|w| w == b"libc.so")
            }
        })
    }

    /// Whether `/proc/self/maps` shows `[base, base + len)` inside one
    /// private anonymous writable mapping (not glibc's `[heap]`, nor a
    /// shared or file mapping). It may reach beyond the chunk: the kernel
    /// merges neighbouring anonymous mappings.
    fn private_anonymous(base: usize, len: usize) -> bool {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return false };
        maps.lines().any(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (Some(range), Some(perms), Some(offset), Some(_dev), Some(inode), None) =
                (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return false;
            };
            let Some((lo, hi)) = range.split_once('-') else { return false };
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) else {
                return false;
            };
            lo <= base && hi >= base + len && perms == "rw-p" && inode == "0" && offset.bytes().all(|b| b == b'0')
        })
    }

    /// Pages being faulted in ahead of a copy: an anonymous mapping of
    /// `len` bytes, the first `fill.faulted` of them in memory.
    struct Ready {
        base: usize,
        len: usize,
        fill: Arc<Fill>,
    }

    /// What the thread faulting in a [`Ready`] mapping and the copy that
    /// takes it share: the copy asks it to stop, and it says how far it got
    /// and when it has stopped.
    #[derive(Default)]
    struct Fill {
        stop: AtomicBool,
        faulted: AtomicUsize,
        stopped: AtomicBool,
    }

    impl Drop for Ready {
        fn drop(&mut self) {
            stop_filling(&self.fill);
            if self.len > 0 {
                // SAFETY: (what is left of) a mapping this module made,
                // used by no one else: its filler has stopped, or given
                // time to, and all it does is ask the kernel to fault
                // pages in, which writes no byte of them.
                unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
            }
        }
    }

    /// The pages for the next large copy.
    static READY: Mutex<Option<Ready>> = Mutex::new(None);

    /// Copies `src` to `dst` (inside `chunk`) through the ready pages, if
    /// there are enough: the whole pages of `dst` get them, copied into
    /// where they are (prefaulting those the filler has not reached) and
    /// then moved under `dst`; the partial pages at either end are copied
    /// plainly. Returns false, having written nothing of `dst`, when there
    /// are no ready pages to use or the move fails.
    ///
    /// # Safety
    /// As [`copy_to_fresh`](super::super::copy_to_fresh); `chunk` is
    /// [`own_mapping`]'s answer for `dst` and `src.len()`.
    pub(in super::super) unsafe fn copy_by_moving(chunk: OwnMapping, dst: *mut u8, src: &[u8]) -> bool {
        let start = chunk.base + PAGE;
        let end = (dst as usize + src.len()) & !(PAGE - 1);
        if end <= start {
            return false;
        }
        let whole = end - start;
        // `try_lock`: a child forked while a thread held it gets none.
        let Some(mut ready) = READY.try_lock().ok().and_then(|mut r| r.take_if(|r| r.len >= whole)) else {
            return false;
        };
        let faulted = stop_filling(&ready.fill);
        let skip = start - dst as usize;
        // SAFETY: the ready mapping has room for `whole` bytes; `skip +
        // whole <= src.len()` (both ends lie inside `dst`'s bytes).
        unsafe { copy_in_parallel(ready.base as *mut u8, &src[skip..skip + whole], faulted) };
        // SAFETY: both ranges are whole pages: the ready mapping's, and
        // `dst`'s inside the chunk glibc mapped for it alone (checked by
        // the caller). The move replaces those pages of `dst`, which hold
        // nothing yet, and unmaps nothing else.
        let moved = unsafe {
            libc::mremap(
                ready.base as *mut libc::c_void,
                whole,
                whole,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                start as *mut libc::c_void,
            )
        };
        if moved == libc::MAP_FAILED {
            return false;
        }
        // The moved pages are `dst`'s now; the rest of the mapping (ready
        // for a larger copy) is unmapped as `ready` drops.
        ready.base += whole;
        ready.len -= whole;
        drop(ready);
        // SAFETY: the partial pages at either end, inside `dst` and `src`.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), dst, skip);
            let tail = skip + whole;
            std::ptr::copy_nonoverlapping(src.as_ptr().add(tail), dst.add(tail), src.len() - tail);
        }
        true
    }

    /// Asks the filler to stop and waits a little for it (it checks
    /// between chunks, each well under a millisecond), so it is not
    /// competing with the copy; then returns how many bytes it faulted in.
    /// Not waiting longer is safe: all it does is ask the kernel to fault
    /// pages in, which changes no byte of them.
    fn stop_filling(fill: &Fill) -> usize {
        fill.stop.store(true, Ordering::Relaxed);
        let give_up = Instant::now() + std::time::Duration::from_millis(5);
        while !fill.stopped.load(Ordering::Acquire) && Instant::now() < give_up {
            std::thread::yield_now();
        }
        fill.faulted.load(Ordering::Acquire)
    }

    /// When the last copy through [`prepare`] ended, in nanoseconds from
    /// the first, and how long the last filler took per MiB (0: not known
    /// yet).
    static LAST_END: AtomicU64 = AtomicU64::new(u64::MAX);
    static NS_PER_MIB: AtomicU64 = AtomicU64::new(0);

    fn now_ns() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    /// How long the host went without a large copy before this one (the
    /// time a filler started after the last one had): call as a copy
    /// starts, and give the answer to [`prepare`].
    pub(in super::super) fn idle() -> u64 {
        now_ns().saturating_sub(LAST_END.load(Ordering::Relaxed))
    }

    /// After a copy of `len` bytes that came `idle` nanoseconds after the
    /// last: maps pages for the next, to be faulted in on a background
    /// thread while the host does its own work, if the host's pace leaves
    /// time for that (`idle` at least 1.5× what faulting them in took last
    /// time, or not known yet). Filling for every copy made 64 MiB out of
    /// Ruby in a loop 17–18 ms a call → 23–29 ms; at 1× of the fill time,
    /// with 5–10 ms of host work between calls, 16–18 → 17–21 ms; at 1.5×
    /// those are even (17.6–20.6 → 18.0–20.6) and 30 ms apart still gains
    /// (17.6–18.3 → 9.1–9.6).
    pub(in super::super) fn prepare(len: usize, idle: u64) {
        LAST_END.store(now_ns(), Ordering::Relaxed);
        let len = len.next_multiple_of(PAGE);
        let per_mib = NS_PER_MIB.load(Ordering::Relaxed);
        if len > READY_MAX || (per_mib != 0 && idle < per_mib * (len >> 20) as u64 * 3 / 2) {
            return;
        }
        let Ok(mut slot) = READY.try_lock() else { return };
        if slot.as_ref().is_some_and(|r| r.len >= len) {
            return;
        }
        // SAFETY: a new private anonymous mapping; no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return;
        }
        let fill = Arc::new(Fill::default());
        let old = slot.replace(Ready { base: base as usize, len, fill: fill.clone() });
        drop(slot);
        // Unmapped outside the lock: that takes a while.
        drop(old);
        let (base, filler) = (base as usize, fill.clone());
        let spawned = without_signals(|| {
            std::thread::Builder::new()
                .name("polyracer-pages".into())
                .stack_size(64 << 10)
                .spawn(move || fault_in(base, len, &filler))
        });
        if spawned.is_err() {
            // Never filled: the copy faults the pages in itself.
            fill.stopped.store(true, Ordering::Release);
        }
    }

    /// Faults in `[base, base + len)` a chunk at a time until done or asked
    /// to stop (`MADV_POPULATE_WRITE`, Linux 5.14+; where the kernel
    /// refuses it the copy faults the pages in itself).
    fn fault_in(base: usize, len: usize, fill: &Fill) {
        let began = Instant::now();
        let mut done = 0;
        while done < len && !fill.stop.load(Ordering::Relaxed) {
            let n = CHUNK.min(len - done);
            // SAFETY: advice on pages of a mapping this module made; it
            // writes no byte of them, so it is harmless even if the copy
            // has taken (or unmapped) them meanwhile.
            if unsafe { libc::madvise((base + done) as *mut libc::c_void, n, libc::MADV_POPULATE_WRITE) } != 0 {
                break;
            }
            done += n;
            fill.faulted.store(done, Ordering::Release);
        }
        if done >= 8 << 20 {
            NS_PER_MIB.store(began.elapsed().as_nanos() as u64 / (done >> 20) as u64, Ordering::Relaxed);
        }
        fill.stopped.store(true, Ordering::Release);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")))]
mod other {
    #[derive(Clone, Copy, Debug)]
    pub(in super::super) struct OwnMapping;

    pub(in super::super) fn own_mapping(_: *mut u8, _: usize) -> Option<OwnMapping> {
        None
    }

    pub(in super::super) unsafe fn copy_by_moving(_: OwnMapping, _: *mut u8, _: &[u8]) -> bool {
        false
    }

    pub(in super::super) fn idle() -> u64 {
        0
    }

    pub(in super::super) fn prepare(_: usize, _: u64) {}
}
