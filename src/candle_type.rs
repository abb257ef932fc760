//! The `candle series` Redis data type: RDB persistence (versioned), AOF rewrite, digest,
//! memory usage, COPY and lazy free. All encoding lives in `candles_core::series`.

use std::os::raw::{c_int, c_void};

use candles_core::series::Series;
use redis_module::native_types::RedisType;
use redis_module::{logging, raw, RedisString};

use crate::stats::{self, Footprint};

/// RDB encoding version of the type. Bump it (and keep reading the old one) on format changes.
pub const ENCVER: i32 = 1;

/// Tag of an AOF-rewrite / APPLY blob that carries a whole series.
pub const SNAPSHOT_TAG: u8 = b'S';
/// Tag of an APPLY blob that carries one write's effect.
pub const EFFECT_TAG: u8 = b'E';

pub static SERIES_TYPE: RedisType = RedisType::new(
    "rc-series",
    ENCVER,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        free: Some(free),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        aux_load: None,
        aux_save: None,
        aux_save2: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        unlink: None,
        copy: Some(copy),
        defrag: None,
        copy2: None,
        free_effort2: None,
        mem_usage2: None,
        unlink2: None,
    },
);

/// A series boxed for Redis, its footprint counted.
pub fn into_raw(s: Series) -> *mut c_void {
    stats::series_added(Footprint::of_series(&s));
    Box::into_raw(Box::new(s)).cast()
}

fn snapshot(s: &Series) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + s.official_len() * 24);
    s.encode(&mut buf);
    buf
}

unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCVER {
        logging::log_io_error(
            rdb,
            logging::RedisLogLevel::Warning,
            &format!("candles: unknown series encoding version {encver}"),
        );
        return std::ptr::null_mut();
    }
    let buf = match raw::load_string_buffer(rdb) {
        Ok(b) => b,
        Err(_) => return std::ptr::null_mut(),
    };
    match Series::decode(buf.as_ref()) {
        Ok(s) => into_raw(s),
        Err(e) => {
            logging::log_io_error(
                rdb,
                logging::RedisLogLevel::Warning,
                &format!("candles: cannot load series: {e}"),
            );
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    let s = &*(value as *const Series);
    raw::save_slice(rdb, &snapshot(s));
}

unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let s = &*(value as *const Series);
    let mut blob = vec![SNAPSHOT_TAG];
    s.encode(&mut blob);
    if let Some(emit) = raw::RedisModule_EmitAOF {
        emit(
            aof,
            c"CANDLE.APPLY".as_ptr(),
            c"sb".as_ptr(),
            key,
            blob.as_ptr(),
            blob.len(),
        );
    }
}

unsafe extern "C" fn free(value: *mut c_void) {
    if value.is_null() {
        return;
    }
    let s = Box::from_raw(value.cast::<Series>());
    stats::series_removed(Footprint::of_series(&s));
    drop(s);
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    (*(value as *const Series)).mem_usage()
}

unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let s = &*(value as *const Series);
    let buf = snapshot(s);
    if let (Some(add), Some(end)) = (
        raw::RedisModule_DigestAddStringBuffer,
        raw::RedisModule_DigestEndSequence,
    ) {
        add(md, buf.as_ptr().cast_mut().cast(), buf.len());
        end(md);
    }
}

unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    // Redis frees in the background when the effort exceeds lazyfree's threshold (64).
    let s = &*(value as *const Series);
    s.official_len() + s.live_len()
}

unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    into_raw((*(value as *const Series)).clone())
}

/// Key name bytes, for replication arguments.
pub fn key_bytes(key: &RedisString) -> &[u8] {
    key.as_slice()
}
