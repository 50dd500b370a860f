//! Running on the caller's thread: the isolate's `v8::Locker` (through
//! `shim/locker.cc`), entering the isolate, and the thread's stack limit.
//!
//! V8 in this build does not check that the lock is held (its API checks
//! are compiled out), so every use of an isolate goes through [`Locked`],
//! which holds the lock and the isolate entered for its whole life.

use std::cell::Cell;
use std::ffi::c_void;
use std::mem::MaybeUninit;

mod ffi {
    use std::ffi::c_void;
    extern "C" {
        pub fn polyracer_locker_init(storage: *mut c_void, isolate: *mut c_void);
        pub fn polyracer_locker_destroy(storage: *mut c_void);
        pub fn polyracer_locker_is_locked(isolate: *mut c_void) -> bool;
        pub fn polyracer_set_stack_limit(isolate: *mut c_void, limit: usize);
    }
}

/// The raw `v8::Isolate*`, `Send + Sync`: only dereferenced under the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawIsolate(*mut c_void);

// SAFETY: the pointer is only used through `Locked` (or by V8's own
// thread-safe `IsolateHandle`).
unsafe impl Send for RawIsolate {}
unsafe impl Sync for RawIsolate {}

impl RawIsolate {
    pub(crate) fn of(isolate: &v8::Isolate) -> RawIsolate {
        // SAFETY: `UnsafeRawIsolatePtr` is a transparent pointer.
        RawIsolate(unsafe { std::mem::transmute::<v8::UnsafeRawIsolatePtr, *mut c_void>(isolate.as_raw_isolate_ptr()) })
    }

    fn v8(self) -> v8::Isolate {
        // SAFETY: a live isolate (the caller holds the lock or owns it).
        unsafe {
            v8::Isolate::from_raw_isolate_ptr(std::mem::transmute::<*mut c_void, v8::UnsafeRawIsolatePtr>(self.0))
        }
    }

    /// The isolate, for a thread that already holds its lock (a nested
    /// call inside one of its host callbacks).
    pub(crate) fn isolate_under_lock(self) -> v8::Isolate {
        self.v8()
    }

    /// Whether the current thread holds this isolate's lock.
    pub(crate) fn is_locked_here(self) -> bool {
        // SAFETY: `IsLocked` only compares the lock's owner with this thread.
        unsafe { ffi::polyracer_locker_is_locked(self.0) }
    }
}

/// The isolate, locked and entered on this thread. Unlocks on drop, even
/// when unwinding.
pub(crate) struct Locked {
    storage: MaybeUninit<[usize; 2]>,
    isolate: v8::Isolate,
}

impl Locked {
    /// Takes the isolate's lock (blocking while another thread holds it;
    /// callers serialise on their context's lane first, so this is normally
    /// uncontended), enters the isolate and sets the stack limit for this
    /// thread.
    ///
    /// # Safety
    /// `raw` must be a live isolate that stays alive until the guard drops.
    pub(crate) unsafe fn new(raw: RawIsolate) -> Locked {
        // A v8::Locker holds no pointer to itself, so it may move.
        let mut this = Locked { storage: MaybeUninit::uninit(), isolate: raw.v8() };
        // SAFETY: two pointer-aligned words, the size the shim asserts.
        unsafe {
            ffi::polyracer_locker_init(this.storage.as_mut_ptr().cast(), raw.0);
            this.isolate.enter();
        }
        set_stack_limit(raw);
        this
    }

    pub(crate) fn isolate(&mut self) -> &mut v8::Isolate {
        &mut self.isolate
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: entered and locked in `new`, on this thread.
        unsafe {
            self.isolate.exit();
            ffi::polyracer_locker_destroy(self.storage.as_mut_ptr().cast());
        }
    }
}

/// The current thread's stack: `(lowest usable address, highest address)`.
/// Cached per thread (glibc parses /proc/self/maps for the main thread).
pub(crate) fn thread_stack() -> (usize, usize) {
    thread_local!(static BOUNDS: Cell<(usize, usize)> = const { Cell::new((0, 0)) });
    BOUNDS.with(|b| {
        if b.get().1 == 0 {
            b.set(query_stack());
        }
        b.get()
    })
}

/// Past this size (an unlimited main-thread stack) only this much is
/// assumed to be usable.
const MAX_ASSUMED_STACK: usize = 64 << 20;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn query_stack() -> (usize, usize) {
    // SAFETY: plain pthread queries on the current thread.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        #[cfg(target_os = "freebsd")]
        let ok =
            libc::pthread_attr_init(&mut attr) == 0 && libc::pthread_attr_get_np(libc::pthread_self(), &mut attr) == 0;
        #[cfg(not(target_os = "freebsd"))]
        let ok = libc::pthread_getattr_np(libc::pthread_self(), &mut attr) == 0;
        if !ok {
            return guess_stack();
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let got = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !got || size == 0 {
            return guess_stack();
        }
        let high = addr as usize + size;
        (high - size.min(MAX_ASSUMED_STACK), high)
    }
}

#[cfg(target_os = "macos")]
fn query_stack() -> (usize, usize) {
    // SAFETY: plain pthread queries on the current thread.
    unsafe {
        let me = libc::pthread_self();
        let high = libc::pthread_get_stackaddr_np(me) as usize;
        let size = libc::pthread_get_stacksize_np(me).min(MAX_ASSUMED_STACK);
        (high - size, high)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "macos")))]
fn query_stack() -> (usize, usize) {
    guess_stack()
}

/// Where the stack cannot be asked for: the 1 MiB every mainstream
/// platform gives a thread at least (Windows' default), from here down.
fn guess_stack() -> (usize, usize) {
    let here = approximate_sp();
    (here.saturating_sub(1 << 20) + (64 << 10), here)
}

#[inline(always)]
pub(crate) fn approximate_sp() -> usize {
    let marker = 0u8;
    std::ptr::addr_of!(marker) as usize
}

/// Stack kept free below V8's limit for host code (callbacks, conversion,
/// the host runtime) that runs under the deepest JS frame.
fn host_reserve(stack_size: usize) -> usize {
    (stack_size / 4).clamp(64 << 10, 2 << 20)
}

/// Bytes of stack left above the host reserve: conversion code checks it
/// so deep values fail with an error instead of overflowing the thread.
pub(crate) fn stack_left() -> usize {
    let (low, _) = thread_stack();
    approximate_sp().saturating_sub(low + (64 << 10))
}

/// V8 otherwise assumes `--stack-size` below where the lock was taken,
/// which overruns small threads (Ruby's 1 MiB, 256 KiB pools): set the
/// limit from the thread's real bounds, so deep recursion is always a
/// `RangeError`.
///
/// On every top-level lock, not once per thread: releasing a top-level
/// `Locker` frees the thread's V8 state, and the next thread to lock leaves
/// stale "central stack" bounds behind that V8 checks when it throws a
/// stack overflow (`Check failed: IsOnCentralStack()`, seen when a thread
/// came back to a context after smaller threads had used it). Setting the
/// limit re-syncs them; it costs ~0.2 µs.
fn set_stack_limit(raw: RawIsolate) {
    let (low, high) = thread_stack();
    // SAFETY: the lock is held, on this thread.
    unsafe { ffi::polyracer_set_stack_limit(raw.0, low + host_reserve(high - low)) };
}
