//! Copying a large byte buffer into memory that was just allocated for it.
//!
//! A fresh allocation of many megabytes is new anonymous memory: the first
//! write to each 4 KiB page faults, and for 64 MiB those 16,384 faults cost
//! several times the copy itself (measured here, in C: malloc + memcpy of
//! 64 MiB 29 ms; a memcpy into memory already touched under 5 ms). So the
//! range is advised first: transparent huge pages, then prefaulted in one
//! call (`MADV_POPULATE_WRITE`, Linux 5.14+): 9–11 ms in all. A process
//! that turned huge pages off for itself (Ruby does, for copy-on-write
//! after fork) still gets the prefault: 17 ms. Every binding copies bytes
//! this way: core into the ArrayBuffers it makes from host bytes, the
//! bindings into the host strings and buffers they make from JS bytes.
//!
//! Memory core allocates itself (host bytes going in) can do better than
//! fresh memory: the kernel zeroes every page it hands out, half the cost
//! of a fresh 64 MiB copy. So the last two large buffers V8 frees are kept
//! as spares (`SPARE`) and the next large copy in of about their size
//! reuses one: a loop passing 64 MiB in went from 16.5 to 7.5 ms, against
//! a plain memcpy's 6.3. Two buffers of at most 128 MiB each are the most
//! a process keeps after its JS let go of its bytes.

/// From this size glibc's malloc always maps memory of its own for an
/// allocation (its mmap threshold rises to at most 32 MiB), so the advice
/// only touches that mapping. Smaller ones may come from its heap, where
/// advice would split the heap's mapping and give huge pages to whatever
/// else lives there. (At 1 MiB it would have paid: Ruby's binary String
/// out went 0.38 → 0.19 ms, with Python's 1 MiB rows 0.02–0.03 ms slower.)
const BULK: usize = 32 << 20;

/// The largest buffer kept as a spare.
const SPARE_MAX: usize = 128 << 20;

/// How many spares are kept. One was not enough: V8 frees a call's buffer
/// during the GC of a later call, so a loop passing 64 MiB got a spare
/// only every other call (9 ms, then 16.5 ms); with two, every call does.
const SPARES: usize = 2;

/// The last large buffers freed by V8, for the next [`filled`] of about
/// their size. Backing stores are freed on whichever thread V8 chooses.
/// Slots, not a `Vec`: nothing allocates while the lock is held (a child
/// forked meanwhile would find it held forever).
static SPARE: std::sync::Mutex<[Option<Vec<u8>>; SPARES]> = std::sync::Mutex::new([const { None }; SPARES]);

/// Copies `src` into `dst`, a buffer of `src.len()` bytes that was just
/// allocated and has not been written yet.
///
/// # Safety
/// `dst` must be valid for writes of `src.len()` bytes and must not
/// overlap `src`.
pub unsafe fn copy_to_fresh(dst: *mut u8, src: &[u8]) {
    if src.len() >= BULK {
        advise(dst, src.len());
    }
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// Asks for huge pages on the whole pages inside `[ptr, ptr + len)`, then
/// for all of them to be faulted in at once.
///
/// Both are hints about memory this process owns: they change no contents
/// (prefaulting only maps the pages a write would), and where the kernel
/// refuses one (huge pages off, a kernel before 5.14, memory that is not
/// anonymous) the copy faults its pages in as before, so the results are
/// not checked.
#[cfg(target_os = "linux")]
fn advise(ptr: *mut u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + len) & !(PAGE - 1);
    if end > start {
        // SAFETY: the range lies inside the caller's allocation, and neither
        // advice frees, moves or changes memory.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_POPULATE_WRITE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_: *mut u8, _: usize) {}

/// `bytes.to_vec()`, copied with [`copy_to_fresh`] (faster for large
/// buffers). Its capacity is its length.
pub fn fresh_copy(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::<u8>::with_capacity(bytes.len());
    // SAFETY: `v` has room for `bytes.len()` bytes, all written by the copy
    // before `set_len`.
    unsafe {
        copy_to_fresh(v.as_mut_ptr(), bytes);
        v.set_len(bytes.len());
    }
    v
}

/// A copy of `bytes` in a buffer core may have had before: a spare when
/// `bytes` are large and one fits (at most 1/8 of it unused), else new
/// memory ([`fresh_copy`]). For the ArrayBuffers core makes from host
/// bytes, whose deleter gives it back with [`recycle`]. (Not for Node's
/// external ArrayBuffers: their finalizers wait for the event loop, and a
/// synchronous loop of 64 MiB copies out then held every buffer.)
pub(crate) fn filled(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() >= BULK {
        let fits = |v: &Vec<u8>| v.capacity() >= bytes.len() && v.capacity() - bytes.len() <= bytes.len() / 8;
        let spare = SPARE.lock().ok().and_then(|mut s| s.iter_mut().find(|x| x.as_ref().is_some_and(fits))?.take());
        if let Some(mut v) = spare {
            v.clear();
            v.extend_from_slice(bytes);
            return v;
        }
    }
    fresh_copy(bytes)
}

/// Takes back a buffer made by [`filled`] that is no longer used: a large
/// one becomes a spare (in a free slot, else replacing the first), others
/// are freed.
pub(crate) fn recycle(v: Vec<u8>) {
    if (BULK..=SPARE_MAX).contains(&v.capacity()) {
        let old = SPARE.lock().ok().and_then(|mut s| match s.iter_mut().find(|x| x.is_none()) {
            Some(free) => free.replace(v),
            None => {
                s.rotate_left(1);
                s[SPARES - 1].replace(v)
            }
        });
        drop(old); // outside the lock: freeing 64 MiB takes a while
    }
}
