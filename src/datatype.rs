//! The Redis type callbacks both data types share (RDB load/save, AOF rewrite, digest, memory
//! usage, lazy-free effort, COPY, free), written once over [`ModuleValue`], and the one way
//! commands write a value at a key: [`Slot`] opens it (or makes a new one) and runs the write
//! with the INFO gauges kept exact; [`store`] puts a whole value at a key.
//!
//! Each value has one versioned snapshot encoding (in `candles-core`), used for RDB, DUMP,
//! `DEBUG DIGEST-VALUE` and the AOF: rewrite emits `<APPLY command> key <tag><snapshot>`.

use std::ffi::CStr;
use std::os::raw::{c_int, c_void};

use candles_core::CoreResult;
use redis_module::key::RedisKeyWritable;
use redis_module::native_types::RedisType;
use redis_module::{logging, raw, RedisError};

use crate::stats::{Footprint, Gauges};
use crate::util::wrong_type;

pub trait ModuleValue: Clone + Sized + 'static {
    /// What the value is called in log lines.
    const WHAT: &'static str;
    /// RDB encoding version; bump it (and keep reading the old one) on format changes.
    const ENCVER: i32;
    /// Internal command that re-creates a value from `<SNAPSHOT_TAG><snapshot>`.
    const APPLY_COMMAND: &'static CStr;
    const SNAPSHOT_TAG: u8;

    fn snapshot(&self, out: &mut Vec<u8>);
    fn restore(bytes: &[u8]) -> CoreResult<Self>;
    fn mem_usage(&self) -> usize;
    /// Redis frees in the background when this exceeds lazyfree's threshold (64).
    fn free_effort(&self) -> usize;
    /// The INFO gauges of this type, and what one value contributes to them.
    const GAUGES: &'static Gauges;
    fn footprint(&self) -> Footprint;
    /// The registered Redis type of these values.
    fn redis_type() -> &'static RedisType;
}

/// The value at an open writable key, ready for a write: the stored one, or a new one that
/// [`Slot::write`] stores once the write succeeds.
pub enum Slot<'k, T> {
    Stored(&'k mut T),
    New(T),
}

impl<'k, T: ModuleValue> Slot<'k, T> {
    /// The value at `key` (WRONGTYPE for a key of another type), or `create()`'s when the key
    /// is empty.
    pub fn open(
        key: &'k RedisKeyWritable,
        create: impl FnOnce() -> Result<T, RedisError>,
    ) -> Result<Self, RedisError> {
        match get_mut::<T>(key)? {
            Some(v) => Ok(Slot::Stored(v)),
            None => create().map(Slot::New),
        }
    }

    pub fn value(&self) -> &T {
        match self {
            Slot::Stored(v) => v,
            Slot::New(v) => v,
        }
    }

    /// Whether the value is new (not stored at the key yet).
    pub fn is_new(&self) -> bool {
        matches!(self, Slot::New(_))
    }

    /// Runs `op` on the value with the INFO gauges kept exact: a stored value is re-counted
    /// after `op`, whatever it returns; a new one is stored at `key`, and counted, only when
    /// `op` succeeds (on an error the key stays empty).
    pub fn write<R>(
        self,
        key: &RedisKeyWritable,
        op: impl FnOnce(&mut T) -> Result<R, RedisError>,
    ) -> Result<R, RedisError> {
        match self {
            Slot::Stored(v) => {
                let before = v.footprint();
                let r = op(v);
                T::GAUGES.changed(before, v.footprint());
                r
            }
            Slot::New(mut v) => {
                let r = op(&mut v)?;
                store(key, v)?;
                Ok(r)
            }
        }
    }
}

/// The value at `key`, if any (WRONGTYPE for a key of another type).
pub fn get_mut<T: ModuleValue>(key: &RedisKeyWritable) -> Result<Option<&mut T>, RedisError> {
    key.get_value::<T>(T::redis_type()).map_err(wrong_type)
}

/// Puts `v` at `key` and counts it (a value it replaces is freed, and uncounted, by Redis).
pub fn store<T: ModuleValue>(key: &RedisKeyWritable, v: T) -> Result<(), RedisError> {
    let fp = v.footprint();
    key.set_value(T::redis_type(), v)?;
    T::GAUGES.add(fp, 1);
    Ok(())
}

/// The type methods for `T`.
pub const fn methods<T: ModuleValue>() -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load::<T>),
        rdb_save: Some(rdb_save::<T>),
        aof_rewrite: Some(aof_rewrite::<T>),
        free: Some(free::<T>),
        mem_usage: Some(mem_usage::<T>),
        digest: Some(digest::<T>),
        aux_load: None,
        aux_save: None,
        aux_save2: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort::<T>),
        unlink: None,
        copy: Some(copy::<T>),
        defrag: None,
        copy2: None,
        free_effort2: None,
        mem_usage2: None,
        unlink2: None,
    }
}

/// A value boxed for Redis, counted in INFO.
pub fn into_raw<T: ModuleValue>(v: T) -> *mut c_void {
    T::GAUGES.add(v.footprint(), 1);
    Box::into_raw(Box::new(v)).cast()
}

fn snapshot<T: ModuleValue>(v: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    v.snapshot(&mut buf);
    buf
}

unsafe extern "C" fn rdb_load<T: ModuleValue>(
    rdb: *mut raw::RedisModuleIO,
    encver: c_int,
) -> *mut c_void {
    let fail = |msg: String| {
        logging::log_io_error(rdb, logging::RedisLogLevel::Warning, &msg);
        std::ptr::null_mut()
    };
    if encver != T::ENCVER {
        return fail(format!(
            "candles: unknown {} encoding version {encver}",
            T::WHAT
        ));
    }
    let buf = match raw::load_string_buffer(rdb) {
        Ok(b) => b,
        Err(_) => return std::ptr::null_mut(),
    };
    match T::restore(buf.as_ref()) {
        Ok(v) => into_raw(v),
        Err(e) => fail(format!("candles: cannot load {}: {e}", T::WHAT)),
    }
}

unsafe extern "C" fn rdb_save<T: ModuleValue>(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    raw::save_slice(rdb, &snapshot(&*(value as *const T)));
}

unsafe extern "C" fn aof_rewrite<T: ModuleValue>(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let mut blob = vec![T::SNAPSHOT_TAG];
    (*(value as *const T)).snapshot(&mut blob);
    if let Some(emit) = raw::RedisModule_EmitAOF {
        // SAFETY: "sb" matches (RedisModuleString*, const char*, size_t); all outlive the call.
        emit(
            aof,
            T::APPLY_COMMAND.as_ptr(),
            c"sb".as_ptr(),
            key,
            blob.as_ptr(),
            blob.len(),
        );
    }
}

unsafe extern "C" fn free<T: ModuleValue>(value: *mut c_void) {
    if value.is_null() {
        return;
    }
    let v = Box::from_raw(value.cast::<T>());
    T::GAUGES.add(v.footprint(), -1);
    drop(v);
}

unsafe extern "C" fn mem_usage<T: ModuleValue>(value: *const c_void) -> usize {
    (*(value as *const T)).mem_usage()
}

unsafe extern "C" fn digest<T: ModuleValue>(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let buf = snapshot(&*(value as *const T));
    if let (Some(add), Some(end)) = (
        raw::RedisModule_DigestAddStringBuffer,
        raw::RedisModule_DigestEndSequence,
    ) {
        add(md, buf.as_ptr().cast_mut().cast(), buf.len());
        end(md);
    }
}

unsafe extern "C" fn free_effort<T: ModuleValue>(
    _key: *mut raw::RedisModuleString,
    value: *const c_void,
) -> usize {
    (*(value as *const T)).free_effort()
}

unsafe extern "C" fn copy<T: ModuleValue>(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    into_raw((*(value as *const T)).clone())
}
