//! Messages between host threads and a context's owner thread.

use std::path::PathBuf;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::value::{HostError, Value};

/// A borrowed value sent to the owner thread without copying.
///
/// Sound because a host thread that sends a request always waits for its
/// reply before returning (a timeout terminates the JS and keeps waiting),
/// so the borrow outlives every use on the owner thread. Passing borrows
/// also keeps allocations made on one thread from being freed on another,
/// which cost more than the handoff itself here.
pub(crate) struct Ptr<T: ?Sized>(*const T);

// SAFETY: see the type's documentation; `T` is only read.
unsafe impl<T: ?Sized + Sync> Send for Ptr<T> {}

impl<T: ?Sized> Ptr<T> {
    pub(crate) fn new(r: &T) -> Self {
        Ptr(r)
    }

    pub(crate) fn get(&self) -> &T {
        // SAFETY: see the type's documentation.
        unsafe { &*self.0 }
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Ptr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// What a call targets.
#[derive(Debug)]
pub(crate) enum CallTarget {
    Handle(u32),
    /// A dotted global path (`JSON.stringify`) or any expression that
    /// evaluates to a function.
    Source(Ptr<str>),
}

#[derive(Debug)]
pub(crate) enum HandleOp {
    Get(Value),
    Set(Value, Value),
    Delete(Value),
    Keys,
    Length,
    Call { this: Option<Value>, args: Ptr<[Value]>, as_handle: bool },
    CallMethod { name: String, args: Ptr<[Value]> },
    Construct { args: Ptr<[Value]> },
    Await,
    Copy,
    ToJsString,
    PromiseState,
}

#[derive(Debug)]
pub(crate) enum Request {
    Eval { source: Ptr<str>, filename: Option<Ptr<str>>, as_handle: bool, await_promise: bool },
    Call { target: CallTarget, args: Ptr<[Value]>, as_handle: bool, await_promise: bool },
    SetGlobal { name: String, value: Value },
    Expose { name: String, fn_id: usize, is_async: bool },
    Handle { id: u32, op: HandleOp },
    RunEventLoop,
    HeapStats,
    LowMemoryNotification,
    HeapSnapshot { path: PathBuf },
    Compile { source: Ptr<str>, filename: Option<Ptr<str>>, cached_data: Option<Ptr<[u8]>>, produce_cache: bool },
    RunScript { id: u32, as_handle: bool, await_promise: bool },
    EvalModule { source: Ptr<str>, filename: Ptr<str>, cached_data: Option<Ptr<[u8]>>, produce_cache: bool },
}

/// Results of requests.
#[derive(Debug)]
pub(crate) enum Out {
    Value(Value),
    Stats(Box<crate::HeapStats>),
    Script(crate::script::ScriptInfo),
    Module(Box<crate::module::ModuleResult>),
    Unit,
}

impl Out {
    pub(crate) fn into_value(self) -> Result<Value> {
        match self {
            Out::Value(v) => Ok(v),
            Out::Unit => Ok(Value::Undefined),
            other => Err(Error::Conversion(format!("unexpected reply {other:?}"))),
        }
    }
}

/// Host → owner thread.
pub(crate) enum ToIsolate {
    Request(Request, Option<Instant>),
    /// The result of a host function the owner thread asked the caller to run.
    CallbackDone(Result<Value, HostError>),
    Shutdown,
}

/// Owner thread → the waiting host thread.
pub(crate) enum ToCaller {
    Reply(Result<Out>),
    /// Run host function `fn_id` on the waiting thread and answer with
    /// [`ToIsolate::CallbackDone`]. For async functions `completion` names the
    /// JS promise that the function's completer settles later.
    Callback {
        fn_id: usize,
        args: Vec<Value>,
        completion: Option<u32>,
    },
}
