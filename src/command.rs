//! Registration of every command, with borrowed arguments.
//!
//! `#[command]` hands its handler a `Vec<RedisString>` built with one `RetainString` per
//! argument and released with one `FreeString` each: about 1,000 instructions on an
//! 8-argument `LIVE_UPDATE`, an eighth of the command. The arguments belong to the client for
//! the whole call, so handlers borrow them as they are. Registration is otherwise what
//! `#[command]` does: the `CommandInfo` (flags, arity, docs, key spec) goes into the list the
//! crate registers at load.

use std::mem::ManuallyDrop;
use std::os::raw::c_int;

use redis_module::{raw, RedisString};

/// Most arguments borrowed without allocating (the hot write forms take at most 10).
const STACK_ARGS: usize = 16;

/// Calls `f` with the command's arguments, borrowed from the client.
pub fn with_borrowed_args<R>(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
    f: impl FnOnce(&[RedisString]) -> R,
) -> R {
    let n = usize::try_from(argc).unwrap_or(0);
    let ptrs: &[*mut raw::RedisModuleString] = if argv.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: Redis passes `argc` valid argument pointers that outlive the call.
        unsafe { std::slice::from_raw_parts(argv, n) }
    };
    // Not retained, so never released: `ManuallyDrop` (no `FreeString` on drop).
    let wrap = |p: *mut raw::RedisModuleString| {
        ManuallyDrop::new(RedisString::from_redis_module_string(ctx, p))
    };
    if ptrs.len() <= STACK_ARGS {
        let args: [ManuallyDrop<RedisString>; STACK_ARGS] =
            std::array::from_fn(|i| wrap(ptrs.get(i).copied().unwrap_or(std::ptr::null_mut())));
        f(as_strings(args.get(..ptrs.len()).unwrap_or_default()))
    } else {
        let args: Vec<ManuallyDrop<RedisString>> = ptrs.iter().map(|&p| wrap(p)).collect();
        f(as_strings(&args))
    }
}

fn as_strings(args: &[ManuallyDrop<RedisString>]) -> &[RedisString] {
    // SAFETY: `ManuallyDrop<T>` is `repr(transparent)` over `T`: same layout, same slice.
    unsafe { &*(args as *const [ManuallyDrop<RedisString>] as *const [RedisString]) }
}

/// Defines the Redis entry point of `$handler` (`fn(&Context, &[RedisString]) -> RedisResult`)
/// and registers it like `#[command]` does, with a single first-key key spec.
macro_rules! module_command {
    (
        $handler:ident, entry: $entry:ident, info: $info:ident,
        name: $name:literal, flags: $flags:literal, arity: $arity:literal,
        summary: $summary:literal, complexity: $complexity:literal, since: $since:literal,
        key_flags: $key_flags:expr $(,)?
    ) => {
        extern "C" fn $entry(
            ctx: *mut redis_module::raw::RedisModuleCtx,
            argv: *mut *mut redis_module::raw::RedisModuleString,
            argc: std::os::raw::c_int,
        ) -> std::os::raw::c_int {
            let context = redis_module::Context::new(ctx);
            let response = $crate::command::with_borrowed_args(ctx, argv, argc, |args| {
                $handler(&context, args)
            });
            context.reply(response.map(|v| v.into())) as std::os::raw::c_int
        }

        #[linkme::distributed_slice(redis_module::commands::COMMANDS_LIST)]
        fn $info() -> Result<redis_module::commands::CommandInfo, redis_module::RedisError> {
            Ok(redis_module::commands::CommandInfo::new(
                $name.to_owned(),
                Some($flags.to_owned()),
                Some($summary.to_owned()),
                Some($complexity.to_owned()),
                Some($since.to_owned()),
                None,
                $arity,
                vec![redis_module::commands::KeySpec::new(
                    None,
                    $key_flags,
                    redis_module::commands::BeginSearch::new_index(1),
                    redis_module::commands::FindKeys::new_range(0, 1, 0),
                )],
                $entry,
            ))
        }
    };
}
pub(crate) use module_command;
