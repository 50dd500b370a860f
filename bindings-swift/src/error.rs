//! Error mapping: the core's `Error` as a uniffi error enum with the same
//! cases, and the error a host callback throws into JS.

use std::fmt;
use std::sync::Arc;

use polyracer as pr;

use crate::convert::to_js;
use crate::value::JsValue;

/// The host's original error object behind a JS exception. Foreign code
/// implements it (Swift wraps any `Error`); when the exception comes back
/// uncaught, the same foreign object is returned as `JsException::cause`.
#[uniffi::export(with_foreign)]
pub trait HostCause: Send + Sync {
    fn describe(&self) -> String;
}

/// Keeps the foreign cause inside the core's `HostError` payload.
struct CausePayload(Arc<dyn HostCause>);

/// One frame of a JS stack (innermost first in `JsException::frames`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct JsStackFrame {
    /// The function's name; `nil` for top-level code and anonymous functions.
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: u32,
    pub column: u32,
}

/// A JS exception (or compile error) with everything needed to report it.
#[derive(Clone, uniffi::Record)]
pub struct JsException {
    /// `TypeError`, `SyntaxError`, ...; empty when a non-object was thrown.
    pub name: String,
    pub message: String,
    /// The JS stack, or `file:line:column` for thrown non-Errors and syntax errors.
    pub stack: String,
    /// The stack as data.
    pub frames: Vec<JsStackFrame>,
    /// The thrown value itself.
    pub value: JsValue,
    pub filename: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The host error that started it, when a host function threw and JS
    /// did not catch the resulting exception.
    pub cause: Option<Arc<dyn HostCause>>,
}

impl fmt::Debug for JsException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsException")
            .field("name", &self.name)
            .field("message", &self.message)
            .field("stack", &self.stack)
            .field("filename", &self.filename)
            .field("line", &self.line)
            .field("column", &self.column)
            .field("cause", &self.cause.as_ref().map(|c| c.describe()))
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

/// Everything that can go wrong when using a context (the core's `Error`).
#[derive(Debug, uniffi::Error)]
#[uniffi::export(Display)]
pub enum PolyRacerError {
    /// Source failed to compile (a `SyntaxError`).
    Parse {
        exception: JsException,
    },
    /// JS threw and nobody caught it.
    Js {
        exception: JsException,
    },
    /// The call ran longer than its timeout; the context stays usable.
    Timeout,
    /// Stopped by `terminate()`.
    Terminated,
    /// The context reached its heap limit; the process survives.
    OutOfMemory,
    Conversion {
        message: String,
    },
    /// The context, script or handle was disposed.
    Disposed {
        message: String,
    },
    InvalidArgument {
        message: String,
    },
}

impl fmt::Display for PolyRacerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolyRacerError::Parse { exception } => {
                write!(f, "{exception}")?;
                if let (Some(l), Some(c)) = (exception.line, exception.column) {
                    write!(f, " ({}:{l}:{c})", exception.filename.as_deref().unwrap_or("<anonymous>"))?;
                }
                Ok(())
            }
            PolyRacerError::Js { exception } => write!(f, "{exception}"),
            PolyRacerError::Timeout => f.write_str("execution timed out"),
            PolyRacerError::Terminated => f.write_str("execution terminated"),
            PolyRacerError::OutOfMemory => f.write_str("out of memory: the context reached its memory limit"),
            PolyRacerError::Conversion { message } => write!(f, "conversion error: {message}"),
            PolyRacerError::Disposed { message } => f.write_str(message),
            PolyRacerError::InvalidArgument { message } => write!(f, "invalid argument: {message}"),
        }
    }
}

impl std::error::Error for PolyRacerError {}

fn exception(ex: pr::JsException) -> JsException {
    let cause = ex.cause_as::<CausePayload>().map(|c| c.0.clone());
    JsException {
        name: ex.name,
        message: ex.message,
        stack: ex.stack,
        frames: ex
            .frames
            .into_iter()
            .map(|f| JsStackFrame { function: f.function, file: f.file, line: f.line, column: f.column })
            .collect(),
        value: to_js(*ex.value),
        filename: ex.filename,
        line: ex.line,
        column: ex.column,
        cause,
    }
}

impl From<pr::Error> for PolyRacerError {
    fn from(e: pr::Error) -> Self {
        match e {
            pr::Error::Parse(ex) => PolyRacerError::Parse { exception: exception(*ex) },
            pr::Error::Js(ex) => PolyRacerError::Js { exception: exception(*ex) },
            pr::Error::Timeout => PolyRacerError::Timeout,
            pr::Error::Terminated => PolyRacerError::Terminated,
            pr::Error::OutOfMemory => PolyRacerError::OutOfMemory,
            pr::Error::Conversion(message) => PolyRacerError::Conversion { message },
            pr::Error::Disposed(message) => PolyRacerError::Disposed { message },
            pr::Error::InvalidArgument(message) => PolyRacerError::InvalidArgument { message },
        }
    }
}

/// What a host function (or module resolver) throws: it becomes a JS
/// exception of class `name` (`Error`, `TypeError`, `RangeError`, ...). If
/// JS does not catch it, the call fails with `PolyRacerError.Js` whose
/// exception carries `cause` back.
#[derive(uniffi::Error)]
pub enum HostFunctionError {
    Thrown { name: String, message: String, cause: Option<Arc<dyn HostCause>> },
}

impl fmt::Debug for HostFunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HostFunctionError::Thrown { name, message, cause } = self;
        f.debug_struct("Thrown").field("name", name).field("message", message).field("cause", &cause.is_some()).finish()
    }
}

impl fmt::Display for HostFunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let HostFunctionError::Thrown { name, message, .. } = self;
        write!(f, "{name}: {message}")
    }
}

impl std::error::Error for HostFunctionError {}

/// A foreign callback failed with an error that is not a `HostFunctionError`
/// (uniffi reports it as unexpected): it still reaches JS as an `Error`.
impl From<uniffi::UnexpectedUniFFICallbackError> for HostFunctionError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HostFunctionError::Thrown { name: "Error".into(), message: e.reason, cause: None }
    }
}

impl From<HostFunctionError> for pr::HostError {
    fn from(e: HostFunctionError) -> Self {
        let HostFunctionError::Thrown { name, message, cause } = e;
        let name = if name.is_empty() { "Error".to_string() } else { name };
        let err = pr::HostError::new(message).with_name(name);
        match cause {
            Some(c) => err.with_payload(Arc::new(CausePayload(c))),
            None => err,
        }
    }
}

impl From<PolyRacerError> for pr::HostError {
    fn from(e: PolyRacerError) -> Self {
        match e {
            PolyRacerError::Js { exception } | PolyRacerError::Parse { exception } => {
                let name = if exception.name.is_empty() { "Error".to_string() } else { exception.name };
                let err = pr::HostError::new(exception.message).with_name(name);
                match exception.cause {
                    Some(c) => err.with_payload(Arc::new(CausePayload(c))),
                    None => err,
                }
            }
            other => pr::HostError::new(other.to_string()),
        }
    }
}

/// What the exported functions return.
pub(crate) type Res<T> = Result<T, PolyRacerError>;
