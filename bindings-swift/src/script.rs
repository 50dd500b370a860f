//! `Script` and `Snapshot`.

use std::sync::Arc;

use polyracer as pr;

use crate::options::{eval_options, seconds, value, EvalOptions};
use crate::value::JsValue;

use crate::error::Res;

/// A compiled script that can run many times in its context.
#[derive(uniffi::Object)]
pub struct Script(pub(crate) pr::Script);

#[uniffi::export]
impl Script {
    #[uniffi::method(default(options = None))]
    pub fn run(&self, options: Option<EvalOptions>) -> Res<JsValue> {
        value(self.0.run_with(eval_options(options)?))
    }

    /// The produced code cache, if `produceCache` was asked for and no cache
    /// was consumed.
    pub fn cached_data(&self) -> Option<Vec<u8>> {
        self.0.cached_data().map(<[u8]>::to_vec)
    }

    /// True when cached data was given and refused (the script compiled normally).
    pub fn cache_rejected(&self) -> bool {
        self.0.cache_rejected()
    }

    /// Releases the compiled script now; later runs fail with `Disposed`.
    pub fn dispose(&self) {
        self.0.dispose();
    }
}

/// A V8 startup snapshot: the heap after running some source.
#[derive(uniffi::Object)]
pub struct Snapshot(pub(crate) pr::Snapshot);

#[uniffi::export]
impl Snapshot {
    /// Runs `source` in a fresh context and captures the heap. `timeout`
    /// (seconds) limits how long `source` may run (default 60).
    #[uniffi::constructor(default(timeout = None))]
    pub fn create(source: String, timeout: Option<f64>) -> Res<Arc<Self>> {
        let t = seconds(timeout)?.unwrap_or(pr::DEFAULT_SNAPSHOT_TIMEOUT);
        Ok(Arc::new(Snapshot(pr::Snapshot::create_with_timeout(&source, t)?)))
    }

    /// Loads bytes from `dump()`. Bytes from another V8 version or flags,
    /// truncated or corrupted, are refused with `InvalidArgument`.
    #[uniffi::constructor]
    pub fn load(bytes: Vec<u8>) -> Res<Arc<Self>> {
        Ok(Arc::new(Snapshot(pr::Snapshot::load(&bytes)?)))
    }

    /// A snapshot with the same heap whose functions were compiled by
    /// running `source` first (its effects are discarded).
    pub fn warmup(&self, source: String) -> Res<Arc<Snapshot>> {
        Ok(Arc::new(Snapshot(self.0.warmup(&source)?)))
    }

    /// The bytes to store and `load` later.
    pub fn dump(&self) -> Vec<u8> {
        self.0.dump()
    }
}
