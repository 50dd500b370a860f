//! `NativeScript` and `NativeSnapshot`.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use polyracer as pr;

use crate::error::throw_pr;
use crate::error::value_out;
use crate::options::{eval_options, EvalOptions};
use crate::raw::JsVal;
use crate::state::CtxState;
use crate::{envdata, raw};

#[napi(object)]
pub struct CompileOptions {
    pub filename: Option<String>,
    pub cached_data: Option<Uint8Array>,
    pub produce_cache: Option<bool>,
}

#[napi]
pub struct NativeScript {
    pub(crate) s: pr::Script,
    pub(crate) state: Arc<CtxState>,
}

#[napi]
impl NativeScript {
    #[napi(ts_args_type = "options?: EvalOptions | undefined | null", ts_return_type = "any")]
    pub fn run(&self, options: Option<EvalOptions>) -> Result<JsVal> {
        let d = envdata::current()?;
        let o = eval_options(&d, options, false)?;
        let s = self.s.clone();
        let r = self.state.run_sync(&d, move |_| s.run_with(o))?;
        value_out(&d, &self.state, r)
    }

    #[napi(getter, ts_return_type = "Buffer | undefined")]
    pub fn cached_data(&self, env: Env) -> Result<JsVal> {
        match self.s.cached_data() {
            Some(b) => raw::buffer_copy(env.raw(), b).map(JsVal),
            None => raw::undefined(env.raw()).map(JsVal),
        }
    }

    #[napi(getter)]
    pub fn cache_rejected(&self) -> bool {
        self.s.cache_rejected()
    }

    #[napi]
    pub fn dispose(&self) {
        self.s.dispose();
    }
}

#[napi]
pub struct NativeSnapshot(pub(crate) pr::Snapshot);

#[napi]
impl NativeSnapshot {
    #[napi(factory)]
    pub fn create(source: String) -> Result<NativeSnapshot> {
        let d = envdata::current()?;
        pr::Snapshot::create(&source).map(NativeSnapshot).map_err(|e| throw_pr(&d, None, e))
    }

    #[napi]
    pub fn warmup(&self, source: String) -> Result<NativeSnapshot> {
        let d = envdata::current()?;
        self.0.warmup(&source).map(NativeSnapshot).map_err(|e| throw_pr(&d, None, e))
    }

    #[napi(ts_return_type = "Buffer")]
    pub fn dump(&self, env: Env) -> Result<JsVal> {
        raw::buffer_copy(env.raw(), self.0.as_bytes()).map(JsVal)
    }

    #[napi(factory)]
    pub fn load(data_in: Uint8Array) -> Result<NativeSnapshot> {
        let d = envdata::current()?;
        pr::Snapshot::load(&data_in).map(NativeSnapshot).map_err(|e| throw_pr(&d, None, e))
    }
}

// ------------------------------------------------------------ async host functions
