//! The memory limit beyond V8's heap: ArrayBuffer backing stores.
//!
//! V8's heap limit covers the JS heap only. Backing stores (`ArrayBuffer`,
//! typed arrays, `SharedArrayBuffer`, bytes from the host) live outside it,
//! so without this a script under a 64 MiB limit allocated gigabytes. A
//! context with a memory limit gets its own counting ArrayBuffer allocator
//! that refuses an allocation once the heap (as of the last GC) plus the
//! live backing stores would pass the limit. V8 then collects garbage,
//! retries, and throws a catchable `RangeError` if it still does not fit.
//!
//! Resizable buffers and WebAssembly memories are committed through V8's
//! page allocator, which no embedder hook sees. They are counted in V8's
//! external-memory statistic, so `over_limit` checks the total while a call
//! runs (from an interrupt the waiting host thread requests) and when it
//! ends: a context over its limit reports `OutOfMemory`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How often the watchdog asks a running call on a memory-limited context
/// to check its total memory (page-allocator stores).
pub(crate) const CHECK_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);

/// One context's byte budget, shared by its allocator (which V8 may call
/// from background threads to free) and the thread running a call.
pub(crate) struct Budget {
    limit: usize,
    /// Bytes held by backing stores this context allocated or adopted.
    buffers: AtomicUsize,
    /// The JS heap's used size at the last GC (or request start).
    heap_used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget { limit, buffers: AtomicUsize::new(0), heap_used: AtomicUsize::new(0) })
    }

    /// Reserves `len` bytes, or refuses if they would pass the limit.
    fn try_charge(&self, len: usize) -> bool {
        let heap = self.heap_used.load(Ordering::Relaxed);
        let mut cur = self.buffers.load(Ordering::Relaxed);
        loop {
            let total = cur.checked_add(len).and_then(|t| t.checked_add(heap));
            if total.is_none_or(|t| t > self.limit) {
                return false;
            }
            match self.buffers.compare_exchange_weak(cur, cur + len, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn release(&self, len: usize) {
        self.buffers.fetch_sub(len, Ordering::Relaxed);
    }

    pub(crate) fn set_heap_used(&self, bytes: usize) {
        self.heap_used.store(bytes, Ordering::Relaxed);
    }
}

unsafe extern "C" fn allocate(budget: &Budget, len: usize) -> *mut c_void {
    if !budget.try_charge(len) {
        return std::ptr::null_mut();
    }
    // calloc(0) may return null, which V8 would read as a failure.
    let p = unsafe { libc::calloc(len.max(1), 1) };
    if p.is_null() {
        budget.release(len);
    }
    p
}

unsafe extern "C" fn allocate_uninitialized(budget: &Budget, len: usize) -> *mut c_void {
    if !budget.try_charge(len) {
        return std::ptr::null_mut();
    }
    let p = unsafe { libc::malloc(len.max(1)) };
    if p.is_null() {
        budget.release(len);
    }
    p
}

unsafe extern "C" fn free(budget: &Budget, data: *mut c_void, len: usize) {
    unsafe { libc::free(data) };
    budget.release(len);
}

unsafe extern "C" fn drop_budget(budget: *const Budget) {
    // SAFETY: the allocator owns one reference, made by `allocator`.
    drop(unsafe { Arc::from_raw(budget) });
}

static VTABLE: v8::RustAllocatorVtable<Budget> =
    v8::RustAllocatorVtable { allocate, allocate_uninitialized, free, drop: drop_budget };

/// A counting ArrayBuffer allocator for an isolate with this budget.
pub(crate) fn allocator(budget: &Arc<Budget>) -> v8::UniqueRef<v8::Allocator> {
    let handle = Arc::into_raw(budget.clone());
    // SAFETY: `handle` is a live `Budget` released by `drop_budget`, and the
    // vtable's functions take exactly that type.
    unsafe { v8::new_rust_allocator(handle, &VTABLE) }
}

/// What the deleter of a backing store made by `host_bytes` needs: the
/// buffer's capacity (to rebuild its `Vec`) and the budget it was charged
/// to.
struct HostBytes {
    capacity: usize,
    budget: Option<Arc<Budget>>,
}

/// Deleter of host bytes adopted by `host_bytes`: returns the buffer to
/// core's spare (`transfer::recycle`) or frees it, and its bytes to the
/// budget.
unsafe extern "C" fn free_host_bytes(data: *mut c_void, len: usize, owner: *mut c_void) {
    // SAFETY: `owner` is the `HostBytes` leaked in `host_bytes` for the
    // buffer `data`/`len`, whose `Vec` had that capacity.
    unsafe {
        let owner = Box::from_raw(owner as *mut HostBytes);
        crate::transfer::recycle(Vec::from_raw_parts(data as *mut u8, len, owner.capacity));
        if let Some(budget) = owner.budget {
            budget.release(len);
        }
    }
}

/// A backing store holding a copy of `bytes` from the host, counted against
/// the budget; `None` when they do not fit.
pub(crate) fn host_bytes(budget: Option<&Arc<Budget>>, bytes: &[u8]) -> Option<v8::SharedRef<v8::BackingStore>> {
    if let Some(budget) = budget {
        if !budget.try_charge(bytes.len()) {
            return None;
        }
    }
    let len = bytes.len();
    let mut v = std::mem::ManuallyDrop::new(crate::transfer::filled(bytes));
    let owner = Box::into_raw(Box::new(HostBytes { capacity: v.capacity(), budget: budget.cloned() })) as *mut c_void;
    // SAFETY: `v`'s buffer is valid for `len` bytes until `free_host_bytes`
    // runs, which V8 calls exactly once.
    Some(
        unsafe {
            v8::ArrayBuffer::new_backing_store_from_ptr(v.as_mut_ptr() as *mut c_void, len, free_host_bytes, owner)
        }
        .make_shared(),
    )
}

/// Updates the heap figure the allocator uses; a GC epilogue callback.
pub(crate) unsafe extern "C" fn after_gc(
    isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: `data` is the budget registered with the callback, alive as
    // long as the isolate; V8 runs epilogues on the isolate's thread.
    let budget = unsafe { &*(data as *const Budget) };
    let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr_unchecked(isolate) };
    budget.set_heap_used(used_heap(&mut isolate));
}

fn used_heap(isolate: &mut v8::Isolate) -> usize {
    let s = isolate.get_heap_statistics();
    s.used_heap_size()
}

/// Whether the isolate's heap plus every backing store V8 knows of
/// (including page-allocator ones this allocator never sees) passes the
/// limit. Collects garbage before saying yes, since dead buffers count
/// until a GC frees them.
///
/// Only memory this allocator never saw can put a context over: the heap is
/// held to the limit by V8 (and the near-heap-limit callback), and
/// allocator stores by `try_charge`. Without page-allocator memory the
/// answer is no, so a context whose heap is merely full (a script-level
/// `const` still holding an allocation bomb's arrays) is not failed again
/// on every later call.
pub(crate) fn over_limit(isolate: &mut v8::Isolate, budget: &Budget) -> bool {
    // One statistics read per question: this runs at the end of every call
    // on a memory-limited context.
    let totals = |isolate: &mut v8::Isolate| {
        let s = isolate.get_heap_statistics();
        let unseen = s.external_memory().saturating_sub(budget.buffers.load(Ordering::Relaxed));
        (unseen, s.used_heap_size().saturating_add(s.external_memory()))
    };
    let total = |isolate: &mut v8::Isolate| totals(isolate).1;
    let (unseen, now) = totals(isolate);
    if unseen == 0 || now <= budget.limit {
        return false;
    }
    // Dead buffers' bytes leave V8's accounting only when the array-buffer
    // sweeper, which runs concurrently after a GC, is finalised; the next
    // GC finalises it first. So at most two collections settle the count.
    for _ in 0..2 {
        isolate.low_memory_notification();
        if total(isolate) <= budget.limit {
            break;
        }
    }
    budget.set_heap_used(used_heap(isolate));
    total(isolate) > budget.limit
}

/// The JS-visible ways to grow page-allocator memory: the method, the
/// object whose prototype has it, and how many bytes a call adds.
const GROWERS: [(&str, &str, Growth); 3] = [
    ("ArrayBuffer", "resize", Growth::ToLength),
    ("SharedArrayBuffer", "grow", Growth::ToLength),
    ("WebAssembly.Memory", "grow", Growth::WasmPages),
];

#[derive(Clone, Copy)]
enum Growth {
    /// `buffer.resize(newLength)` / `sab.grow(newLength)`.
    ToLength = 0,
    /// `memory.grow(deltaPages)`, 64 KiB pages.
    WasmPages = 1,
}

/// Wraps `ArrayBuffer.prototype.resize`, `SharedArrayBuffer.prototype.grow`
/// and `WebAssembly.Memory.prototype.grow` so that growth past the limit
/// throws a `RangeError` before any memory is committed, instead of being
/// caught by the periodic check after the fact. (`memory.grow` executed
/// inside WebAssembly code is still only seen by that check.)
pub(crate) fn install_growth_guards(scope: &mut v8::PinScope) {
    let global = scope.get_current_context().global(scope);
    for (owner, method, growth) in GROWERS {
        let mut obj: v8::Local<v8::Object> = global;
        for part in owner.split('.') {
            let key = v8::String::new(scope, part).unwrap();
            match obj.get(scope, key.into()).and_then(|v| v8::Local::<v8::Object>::try_from(v).ok()) {
                Some(o) => obj = o,
                None => return,
            }
        }
        let proto_key = v8::String::new(scope, "prototype").unwrap();
        let Some(proto) = obj.get(scope, proto_key.into()).and_then(|v| v8::Local::<v8::Object>::try_from(v).ok())
        else {
            continue;
        };
        let key = v8::String::new(scope, method).unwrap();
        let Some(original) = proto.get(scope, key.into()).and_then(|v| v8::Local::<v8::Function>::try_from(v).ok())
        else {
            continue;
        };
        let data = v8::Array::new(scope, 2);
        data.set_index(scope, 0, original.into());
        let kind = v8::Integer::new(scope, growth as i32);
        data.set_index(scope, 1, kind.into());
        let Some(guard) = v8::Function::builder(growth_guard).data(data.into()).length(1).build(scope) else {
            continue;
        };
        guard.set_name(key);
        proto.set(scope, key.into(), guard.into());
    }
}

fn growth_guard(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, mut rv: v8::ReturnValue<v8::Value>) {
    let data: v8::Local<v8::Array> = args.data().try_into().unwrap();
    let original: v8::Local<v8::Function> = data.get_index(scope, 0).unwrap().try_into().unwrap();
    let kind = data.get_index(scope, 1).and_then(|k| k.int32_value(scope)).unwrap_or(0);
    let this = args.this();
    let requested = args.get(0).number_value(scope).unwrap_or(0.0);
    let added = if kind == Growth::WasmPages as i32 {
        requested * 65536.0
    } else {
        let len_key = v8::String::new(scope, "byteLength").unwrap();
        let current = this.get(scope, len_key.into()).and_then(|v| v.number_value(scope)).unwrap_or(0.0);
        requested - current
    };
    if added > 0.0 {
        let st = crate::runtime::state(scope);
        if let Some(budget) = st.budget() {
            let fits = |isolate: &mut v8::Isolate| {
                let s = isolate.get_heap_statistics();
                (s.used_heap_size().saturating_add(s.external_memory()) as f64) + added <= budget.limit as f64
            };
            if !fits(scope) {
                scope.low_memory_notification();
                if !fits(scope) {
                    let msg =
                        v8::String::new(scope, "Array buffer allocation failed: the context's memory limit").unwrap();
                    let err = v8::Exception::range_error(scope, msg);
                    scope.throw_exception(err);
                    return;
                }
            }
        }
    }
    let argv: Vec<_> = (0..args.length()).map(|i| args.get(i)).collect();
    if let Some(r) = original.call(scope, this.into(), &argv) {
        rv.set(r);
    }
}
