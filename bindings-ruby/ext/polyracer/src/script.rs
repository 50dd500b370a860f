//! `Polyracer::Script` and `Polyracer::Snapshot`.

use std::sync::Mutex;

use magnus::typed_data::Obj;
use magnus::value::{Opaque, ReprValue};
use magnus::{Error, RString, Ruby, TryConvert, Value};

use polyracer as pr;

use crate::classes::{RbContext, RbScript, RbSnapshot};
use crate::error::{built, OrRaise};
use crate::from_ruby::rstring_to_string;
use crate::gvl::without_gvl;
use crate::options::eval_opts;
use crate::to_ruby::RbSink;

pub(crate) fn owner_ctx(ruby: &Ruby, owner: Opaque<Value>) -> Result<Obj<RbContext>, Error> {
    Obj::<RbContext>::try_convert(ruby.get_inner(owner))
}

impl RbScript {
    pub(crate) fn rb_run(ruby: &Ruby, rb_self: Obj<Self>, timeout: Option<Value>) -> Result<Value, Error> {
        let opts = eval_opts(ruby, None, timeout, false)?;
        let owner = owner_ctx(ruby, rb_self.owner)?;
        let mut sink = RbSink::new(owner.as_value());
        let r = without_gvl(ruby, || rb_self.s.run_into(opts, &mut sink));
        built(ruby, owner.as_value(), r, sink, None)
    }

    pub(crate) fn rb_cached_data(ruby: &Ruby, rb_self: Obj<Self>) -> Option<RString> {
        rb_self.s.cached_data().map(|b| ruby.enc_str_new(b, ruby.ascii8bit_encoding()))
    }

    pub(crate) fn rb_cache_rejected(&self) -> bool {
        self.s.cache_rejected()
    }

    pub(crate) fn rb_dispose(&self) {
        self.s.dispose();
    }
}

impl RbSnapshot {
    pub(crate) fn get(&self) -> pr::Snapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn rb_new(ruby: &Ruby, source: RString) -> Result<Obj<RbSnapshot>, Error> {
        let source = rstring_to_string(source)?;
        let s = without_gvl(ruby, || pr::Snapshot::create(&source)).or_raise(ruby, None)?;
        Ok(ruby.obj_wrap(RbSnapshot(Mutex::new(s))))
    }

    pub(crate) fn rb_warmup(ruby: &Ruby, rb_self: Obj<Self>, source: RString) -> Result<Obj<RbSnapshot>, Error> {
        let source = rstring_to_string(source)?;
        let cur = rb_self.get();
        let s = without_gvl(ruby, || cur.warmup(&source)).or_raise(ruby, None)?;
        *rb_self.0.lock().unwrap_or_else(|e| e.into_inner()) = s;
        Ok(rb_self)
    }

    pub(crate) fn rb_dump(ruby: &Ruby, rb_self: Obj<Self>) -> RString {
        ruby.enc_str_new(rb_self.get().as_bytes(), ruby.ascii8bit_encoding())
    }

    pub(crate) fn rb_load(ruby: &Ruby, bytes: RString) -> Result<Obj<RbSnapshot>, Error> {
        // SAFETY: copied before any Ruby code runs.
        let data = unsafe { bytes.as_slice() }.to_vec();
        let s = Ok(pr::Snapshot::load(&data)).or_raise(ruby, None)?;
        Ok(ruby.obj_wrap(RbSnapshot(Mutex::new(s))))
    }
}
