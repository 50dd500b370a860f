//! The one error type every binding maps to its exception hierarchy (brief §4).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::value::Value;

/// A JS exception (or a compile error) with everything a host needs to report it.
#[derive(Clone)]
pub struct JsException {
    /// The error's `name` (`"TypeError"`, `"SyntaxError"`, ...); empty when
    /// the thrown value is not an object.
    pub name: String,
    /// The error's `message`, or the string form of a thrown non-Error value.
    pub message: String,
    /// The JS stack (`name: message\n    at fn (file.js:1:5)`); for thrown
    /// non-Error values and syntax errors it is built from the V8 message
    /// (`file.js:line:column`).
    pub stack: String,
    /// The thrown value itself, converted (or `Undefined` if it could not be).
    pub value: Box<Value>,
    /// The JS call stack as data, innermost first: captured when the error
    /// was created, else where it was thrown; for a syntax error, the place
    /// of the error. Bindings build their language's backtraces from it.
    pub frames: Vec<StackFrame>,
    /// Script name, 1-based line and column where the exception was raised.
    pub filename: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The report V8's own shell (d8) prints for an uncaught exception:
    /// `file:line: String(exception)`, the source line with a `^` under
    /// the failing range, then, after a blank line, the error's own
    /// `stack`. For logs, and for compatibility layers whose users match on
    /// it (PyMiniRacer's messages are exactly this).
    pub report: String,
    /// The host error that started it, when a host function threw and JS
    /// did not catch the resulting exception.
    pub cause: Option<Arc<dyn Any + Send + Sync>>,
}

/// One frame of a JS stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackFrame {
    /// The function's name; `None` for top-level code and anonymous functions.
    pub function: Option<String>,
    /// Script name or `//# sourceURL`; `None` when V8 knows none.
    pub file: Option<String>,
    /// 1-based line and column.
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for StackFrame {
    /// `fn (file:line:column)` or `file:line:column`, as in a JS stack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_deref().unwrap_or("<anonymous>");
        match &self.function {
            Some(name) => write!(f, "{name} ({file}:{}:{})", self.line, self.column),
            None => write!(f, "{file}:{}:{}", self.line, self.column),
        }
    }
}

impl fmt::Debug for JsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsException")
            .field("name", &self.name)
            .field("message", &self.message)
            .field("stack", &self.stack)
            .field("value", &self.value)
            .field("filename", &self.filename)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("cause", &self.cause.is_some())
            .finish()
    }
}

impl fmt::Display for JsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.name, self.message)
        }
    }
}

impl JsException {
    /// The host error object that caused this exception, if it has the given type.
    pub fn cause_as<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.cause.as_deref().and_then(|c| c.downcast_ref::<T>())
    }
}

/// Everything that can go wrong when using a context.
#[derive(Debug, Clone)]
pub enum Error {
    /// Source failed to compile (a `SyntaxError`), with line and column.
    Parse(Box<JsException>),
    /// JS threw and nobody caught it.
    Js(Box<JsException>),
    /// The call ran longer than its timeout and was terminated. The context
    /// stays usable.
    Timeout,
    /// Execution was stopped by [`crate::Context::terminate`].
    Terminated,
    /// The context reached its memory limit (V8 heap plus ArrayBuffer
    /// backing stores); execution was terminated. The
    /// process survives; the context stays usable once garbage is released.
    OutOfMemory,
    /// A value could not be converted between JS and the host.
    Conversion(String),
    /// The context (or handle, script) was disposed, or belongs to the parent
    /// of a forked process.
    Disposed(String),
    /// An argument was invalid (bad flag, bad path, wrong handle kind, ...).
    InvalidArgument(String),
}

impl Error {
    /// A stable, language-neutral name for the error kind, used by the
    /// conformance cases and by bindings.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Parse(_) => "ParseError",
            Error::Js(_) => "JSError",
            Error::Timeout => "Timeout",
            Error::Terminated => "Terminated",
            Error::OutOfMemory => "OutOfMemory",
            Error::Conversion(_) => "Conversion",
            Error::Disposed(_) => "Disposed",
            Error::InvalidArgument(_) => "InvalidArgument",
        }
    }

    pub fn exception(&self) -> Option<&JsException> {
        match self {
            Error::Parse(e) | Error::Js(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse(e) => {
                write!(f, "{e}")?;
                if let (Some(l), Some(c)) = (e.line, e.column) {
                    write!(f, " ({}:{l}:{c})", e.filename.as_deref().unwrap_or("<anonymous>"))?;
                }
                Ok(())
            }
            Error::Js(e) => write!(f, "{e}"),
            Error::Timeout => f.write_str("execution timed out"),
            Error::Terminated => f.write_str("execution terminated"),
            Error::OutOfMemory => f.write_str("out of memory: the context reached its memory limit"),
            Error::Conversion(m) => write!(f, "conversion error: {m}"),
            Error::Disposed(m) => f.write_str(m),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
