//! Memory limits while JS runs: V8's near-heap-limit callback, and the
//! interrupts the watchdog requests (memory check, wait hook).

use std::ffi::c_void;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use super::{State, Termination};

/// Near the heap limit: stop the JS and grant headroom so V8 can unwind
/// instead of aborting the process. The limit is restored after the request.
pub(super) unsafe extern "C" fn near_heap_limit(data: *mut c_void, current: usize, _initial: usize) -> usize {
    // SAFETY: `data` is the `Rc<State>` pointer registered in `init_isolate`,
    // alive as long as the isolate.
    let st = unsafe { &*(data as *const State) };
    st.shared.set_reason(Termination::OutOfMemory);
    st.shared.fixed.isolate_handle.terminate_execution();
    st.heap_limit_raised.set(true);
    // The headroom lets V8 unwind to the termination. A builtin that does
    // not check for termination (`new Array(2**32 - 1).fill(0)`) would
    // otherwise be granted headroom again and again, taking the host's
    // memory (1.2 GB under a 128 MiB limit) before V8 aborts anyway; past
    // twice the limit V8 gets no more and stops the process as it would
    // without an embedder. No embedder hook can survive that case.
    let limit = st.memory_limit.unwrap_or(current);
    let cap = limit.saturating_mul(2).saturating_add(64 << 20);
    (current + current.max(32 << 20)).min(cap).max(current)
}

/// A GC epilogue callback (registered with `ContextOptions::gc_heap_limit`):
/// stops the running JS when the collection left more heap in use than the
/// limit. A collection while no JS runs stops nothing.
pub(super) unsafe extern "C" fn check_heap_after_gc(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `Rc<State>` pointer registered in `init_isolate`,
    // alive as long as the isolate; V8 runs epilogues on the isolate's thread.
    let st = unsafe { &*(data as *const State) };
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr_unchecked(isolate) };
    let used = isolate.get_heap_statistics().used_heap_size();
    if st.gc_heap_limit.is_some_and(|limit| used > limit) && st.depth.get() > 0 {
        st.shared.interrupt(Termination::OutOfMemory);
    }
}

/// Requested every `memory::CHECK_PERIOD` by the watchdog while a call runs
/// on a memory-limited context: stops the JS once it is over its limit.
///
/// V8 passes a raw `v8::Isolate*`; rusty_v8's `InterruptCallback` type
/// declares `&mut Isolate`, which in this version is a wrapper *around*
/// that pointer, so the callback takes the raw pointer and is cast to the
/// declared type where it is registered (`check_memory_callback`).
unsafe extern "C" fn check_memory(isolate: v8::UnsafeRawIsolatePtr, request_seq: *mut c_void) {
    // SAFETY: V8 runs interrupts on the isolate's thread with a live isolate.
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(isolate) };
    let Some(st) = isolate.get_slot::<Rc<State>>().cloned() else { return };
    if st.shared.exec.request_seq.load(Ordering::SeqCst) != request_seq as usize {
        return; // requested during an earlier call
    }
    if let Some(budget) = &st.budget {
        if crate::memory::over_limit(&mut isolate, budget) {
            st.shared.interrupt(Termination::OutOfMemory);
        }
    }
}

/// rusty_v8's `InterruptCallback` (not re-exported).
pub(super) type InterruptCallback = unsafe extern "C" fn(&mut v8::Isolate, *mut c_void);

/// An interrupt callback taking the raw pointer V8 passes, as rusty_v8's
/// declared type (see `check_memory`).
pub(super) fn interrupt_callback(f: unsafe extern "C" fn(v8::UnsafeRawIsolatePtr, *mut c_void)) -> InterruptCallback {
    // SAFETY: same ABI: `UnsafeRawIsolatePtr` is a transparent pointer, and
    // the pointer V8 passes is exactly that.
    unsafe { std::mem::transmute::<unsafe extern "C" fn(v8::UnsafeRawIsolatePtr, *mut c_void), InterruptCallback>(f) }
}

pub(crate) fn check_memory_callback() -> InterruptCallback {
    interrupt_callback(check_memory)
}

pub(super) fn restore_heap_limit(isolate: &mut v8::Isolate, st: &State) {
    if let Some(limit) = st.memory_limit {
        isolate.low_memory_notification();
        isolate.remove_near_heap_limit_callback(near_heap_limit, limit);
        isolate.add_near_heap_limit_callback(near_heap_limit, st as *const State as *mut c_void);
    }
}
