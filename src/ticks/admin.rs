//! The TICKS.* commands about a book as a whole: INFO, and the internal APPLY (the AOF-rewrite
//! form of a book).

use candles_core::ticks::TickBook;
use redis_module::commands::KeySpecFlags;
use redis_module::{Context, RedisResult, RedisString, RedisValue};

use super::book_type::{SNAPSHOT_TAG, TICKS_TYPE};
use super::default_cap;
use crate::args::Args;
use crate::command::module_command;
use crate::datatype;
use crate::util::{core_err, err, field_list, require_internal, wrong_type};

module_command!(
    ticks_info,
    entry: ticks_info_entry,
    info: ticks_info_info,
    name: "TICKS.INFO",
    flags: "readonly",
    arity: 2,
    summary: "Counts, caps and memory of a tick book",
    complexity: "O(S) for S streams",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
);

fn ticks_info(ctx: &Context, args: &[RedisString]) -> RedisResult {
    let mut args = Args::new(args);
    let name = args.next_key()?;
    args.done()?;
    let key = ctx.open_key(name);
    let Some(b) = key.get_value::<TickBook>(&TICKS_TYPE).map_err(wrong_type)? else {
        return Ok(RedisValue::Array(vec![]));
    };
    let i = b.info();
    let int = |v: usize| RedisValue::Integer(v as i64);
    let fields = [
        ("streams", int(i.streams)),
        ("ticks", int(i.ticks)),
        ("late_ticks", int(i.late_ticks)),
        ("cap_min", int(i.cap_min)),
        ("cap_max", int(i.cap_max)),
        ("default_cap", int(default_cap())),
        ("memory", int(i.memory)),
    ];
    Ok(field_list(fields))
}

// Internal: the AOF-rewrite form of a tick book (a canonical snapshot). Refused from clients.
module_command!(
    ticks_apply,
    entry: ticks_apply_entry,
    info: ticks_apply_info,
    name: "TICKS.APPLY",
    flags: "write",
    arity: 3,
    summary: "Internal: AOF-rewrite form of a tick book (refused from clients)",
    complexity: "O(N) for N ticks",
    since: "0.1.0",
    key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::UPDATE,
);

fn ticks_apply(ctx: &Context, args: &[RedisString]) -> RedisResult {
    require_internal(ctx, "TICKS.APPLY")?;
    let mut args = Args::new(args);
    let name = args.next_key()?;
    let book = args.next_arg()?;
    args.done()?;
    let book = match book.as_slice().split_first() {
        Some((&SNAPSHOT_TAG, body)) => TickBook::decode(body).map_err(core_err)?,
        _ => return Err(err("TICKS.APPLY: unknown payload")),
    };
    let key = ctx.open_key_writable(name);
    if !key.is_empty() {
        // Only ever replaces a tick book (the old one is freed and uncounted by the type).
        datatype::get_mut::<TickBook>(&key)?;
    }
    datatype::store(&key, book)?;
    ctx.replicate_verbatim();
    Ok(RedisValue::SimpleStringStatic("OK"))
}
