// A C ABI over the parts of V8's threading API that rusty_v8 does not bind:
// v8::Locker (so any host thread can run JS on an isolate, one at a time)
// and Isolate::SetStackLimit (so V8 knows the calling thread's real stack).
//
// No C++ standard-library type crosses this boundary, so the prebuilt
// archive's private libc++ (namespace std::__Cr) never meets the system's
// C++ library; only V8's own exported functions are called.
#include <stddef.h>
#include <stdint.h>

#include <new>  // placement new only (inline; no runtime symbols)

#include "v8-isolate.h"
#include "v8-locker.h"

static_assert(sizeof(v8::Locker) == 2 * sizeof(void*), "v8::Locker layout");
static_assert(alignof(v8::Locker) == alignof(void*), "v8::Locker alignment");

extern "C" {

// Constructs a v8::Locker in Rust-owned storage (two words, pointer
// aligned): no allocation per lock.
void polyracer_locker_init(void* storage, v8::Isolate* isolate) {
  ::new (storage) v8::Locker(isolate);
}

void polyracer_locker_destroy(void* storage) {
  static_cast<v8::Locker*>(storage)->~Locker();
}

bool polyracer_locker_is_locked(v8::Isolate* isolate) {
  return v8::Locker::IsLocked(isolate);
}

// With the lock held, on the thread the limit is for. V8 keeps it per
// (isolate, thread) across top-level lock acquisitions.
void polyracer_set_stack_limit(v8::Isolate* isolate, uintptr_t limit) {
  isolate->SetStackLimit(limit);
}

}  // extern "C"
