//! The `tickbook1` Redis data type (one key per trading session, named tick streams inside):
//! RDB persistence (versioned canonical encoding), AOF rewrite, digest, memory usage, COPY
//! and lazy free. All encoding lives in `candles_core::ticks`.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicI64, Ordering};

use candles_core::ticks::TickBook;
use redis_module::native_types::RedisType;
use redis_module::{logging, raw};

/// RDB encoding version of the type. Bump it (and keep reading the old one) on format changes.
/// The payload itself starts with its own versioned magic (`TKB\x01`).
pub const ENCVER: i32 = 1;

/// Tag of an AOF-rewrite blob (`TICKS.APPLY key <tag><encoding>`) that carries a whole book.
pub const SNAPSHOT_TAG: u8 = b'B';

pub static TICKS_TYPE: RedisType = RedisType::new(
    "tickbook1",
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

// Counters of the `candles` INFO section for tick books (exact on create, push, evict, copy,
// load and free; free may run on the lazy-free thread, hence atomics).
pub static TICK_BOOKS: AtomicI64 = AtomicI64::new(0);
pub static TICK_STREAMS: AtomicI64 = AtomicI64::new(0);
pub static TICKS: AtomicI64 = AtomicI64::new(0);
pub static TICK_BYTES: AtomicI64 = AtomicI64::new(0);

/// What one book contributes to the counters.
#[derive(Clone, Copy, Default)]
pub struct Footprint {
    streams: i64,
    ticks: i64,
    bytes: i64,
}

impl Footprint {
    pub fn of(b: &TickBook) -> Footprint {
        Footprint {
            streams: b.stream_count() as i64,
            ticks: b.tick_count() as i64,
            bytes: b.mem_usage() as i64,
        }
    }
}

fn count(f: Footprint, sign: i64) {
    TICK_STREAMS.fetch_add(sign * f.streams, Ordering::Relaxed);
    TICKS.fetch_add(sign * f.ticks, Ordering::Relaxed);
    TICK_BYTES.fetch_add(sign * f.bytes, Ordering::Relaxed);
}

pub fn book_added(f: Footprint) {
    TICK_BOOKS.fetch_add(1, Ordering::Relaxed);
    count(f, 1);
}

pub fn book_removed(f: Footprint) {
    TICK_BOOKS.fetch_add(-1, Ordering::Relaxed);
    count(f, -1);
}

pub fn book_changed(before: Footprint, after: Footprint) {
    count(before, -1);
    count(after, 1);
}

/// A book boxed for Redis, its footprint counted.
pub fn into_raw(b: TickBook) -> *mut c_void {
    book_added(Footprint::of(&b));
    Box::into_raw(Box::new(b)).cast()
}

/// The canonical encoding; an empty book's if the book cannot be read (never expected: the
/// book only holds what it validated).
fn snapshot(b: &TickBook) -> Vec<u8> {
    match b.encode() {
        Ok(v) => v,
        Err(e) => {
            logging::log_warning(format!("candles: tick book cannot be encoded: {e}"));
            TickBook::new().encode().unwrap_or_default()
        }
    }
}

unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCVER {
        logging::log_io_error(
            rdb,
            logging::RedisLogLevel::Warning,
            &format!("candles: unknown tick book encoding version {encver}"),
        );
        return std::ptr::null_mut();
    }
    let buf = match raw::load_string_buffer(rdb) {
        Ok(b) => b,
        Err(_) => return std::ptr::null_mut(),
    };
    match TickBook::decode(buf.as_ref()) {
        Ok(b) => into_raw(b),
        Err(e) => {
            logging::log_io_error(
                rdb,
                logging::RedisLogLevel::Warning,
                &format!("candles: cannot load tick book: {e}"),
            );
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    let b = &*(value as *const TickBook);
    raw::save_slice(rdb, &snapshot(b));
}

unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    let b = &*(value as *const TickBook);
    let mut blob = vec![SNAPSHOT_TAG];
    blob.extend_from_slice(&snapshot(b));
    if let Some(emit) = raw::RedisModule_EmitAOF {
        emit(
            aof,
            c"TICKS.APPLY".as_ptr(),
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
    let b = Box::from_raw(value.cast::<TickBook>());
    book_removed(Footprint::of(&b));
    drop(b);
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    (*(value as *const TickBook)).mem_usage()
}

unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    let b = &*(value as *const TickBook);
    let buf = snapshot(b);
    if let (Some(add), Some(end)) = (
        raw::RedisModule_DigestAddStringBuffer,
        raw::RedisModule_DigestEndSequence,
    ) {
        add(md, buf.as_ptr().cast_mut().cast(), buf.len());
        end(md);
    }
}

unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    // Redis frees in the background when the effort exceeds lazyfree's threshold (64):
    // one unit per chunk of ticks plus one per stream.
    (*(value as *const TickBook)).free_effort()
}

unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    into_raw((*(value as *const TickBook)).clone())
}
