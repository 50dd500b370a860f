//! What core asks the kernel about memory it is about to copy into:
//! transparent huge pages, prefaulting, whether a page is mapped in yet.
//!
//! These are hints about memory this process owns: they change no
//! contents (prefaulting only maps the pages a write would), and where the
//! kernel refuses one (huge pages off, a kernel before 5.14, memory that
//! is not anonymous) the copy faults its pages in as it would anyway.

/// Asks for transparent huge pages on the whole pages inside
/// `[ptr, ptr + len)`, and says whether the kernel will give them: the
/// advice was taken, the system gives them to advised memory, and this
/// process has not turned them off for itself (Ruby does).
///
/// The answer only decides whether chunks are prefaulted.
#[cfg(target_os = "linux")]
pub(super) fn advise_huge(ptr: *mut u8, len: usize) -> bool {
    // Asked first: advice the kernel would not act on still splits the
    // mapping in three, and a mapping of its own is what lets
    // `ready_pages::own_mapping` move pages under it.
    // SAFETY: a query that takes no pointers.
    if !huge_pages_advisable() || unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) } != 0 {
        return false;
    }
    let Some((start, n)) = whole_pages(ptr, len) else { return false };
    // SAFETY: the range lies inside the caller's allocation; the advice
    // frees, moves and changes nothing.
    unsafe { libc::madvise(start, n, libc::MADV_HUGEPAGE) == 0 }
}

/// Whether transparent huge pages are `always` or `madvise` (not
/// `never`), read once.
#[cfg(target_os = "linux")]
fn huge_pages_advisable() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|s| s.contains("[always]") || s.contains("[madvise]"))
    })
}

/// Faults in the whole pages inside `[ptr, ptr + len)` in one call
/// (`MADV_POPULATE_WRITE`, Linux 5.14+), cheaper than a fault per page.
#[cfg(target_os = "linux")]
pub(super) fn populate(ptr: *mut u8, len: usize) {
    if let Some((start, n)) = whole_pages(ptr, len) {
        // SAFETY: as in `advise_huge`.
        unsafe { libc::madvise(start, n, libc::MADV_POPULATE_WRITE) };
    }
}

/// The page size these hints work in (the smallest on every Linux target
/// this builds for; a larger page only makes the hints coarser).
#[cfg(target_os = "linux")]
pub(super) const PAGE: usize = 4096;

#[cfg(target_os = "linux")]
fn whole_pages(ptr: *mut u8, len: usize) -> Option<(*mut libc::c_void, usize)> {
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + len) & !(PAGE - 1);
    (end > start).then(|| (start as *mut libc::c_void, end - start))
}

/// Whether the last whole page inside `[ptr, ptr + len)` is mapped in
/// (one `mincore` call; `true` when there is no whole page or the kernel
/// will not say, so nothing is prefaulted on a guess).
#[cfg(target_os = "linux")]
pub(super) fn last_page_resident(ptr: *mut u8, len: usize) -> bool {
    let Some((start, n)) = whole_pages(ptr, len) else { return true };
    let mut state = 0u8;
    // SAFETY: the page lies inside the caller's allocation (page-aligned,
    // as mincore needs); `state` holds the one byte it writes for a page.
    let r = unsafe { libc::mincore((start as usize + n - PAGE) as *mut libc::c_void, PAGE, &mut state) };
    r != 0 || state & 1 == 1
}

#[cfg(not(target_os = "linux"))]
pub(super) fn last_page_resident(_: *mut u8, _: usize) -> bool {
    true
}

#[cfg(not(target_os = "linux"))]
pub(super) fn advise_huge(_: *mut u8, _: usize) -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
pub(super) fn populate(_: *mut u8, _: usize) {}
