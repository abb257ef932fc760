use candles_feed::backoff::shutdown_pair;
use candles_feed::quiet::eprint_line;
use candles_feed::{init_logging, Args, Hooks};
use clap::Parser;
use std::time::Duration;

fn main() {
    let args = Args::parse();
    init_logging(args.log_format);
    if let Err(e) = candles_feed::config::validate(&args) {
        eprint_line(format_args!("candles-feed: {e:#}"));
        std::process::exit(2);
    }
    let rt = match candles_feed::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprint_line(format_args!("candles-feed: cannot start the runtime: {e}"));
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let (trigger, shutdown) = shutdown_pair();
        tokio::spawn(async move {
            let signal = wait_signal().await;
            tracing::info!(signal, "shutting down");
            trigger.trigger();
            // Whatever is still running, the process is gone within a second of the signal.
            tokio::time::sleep(Duration::from_millis(900)).await;
            tracing::warn!("shutdown took too long, exiting now");
            std::process::exit(0);
        });
        match candles_feed::run(args, shutdown, Hooks::default()).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("{e:#}");
                1
            }
        }
    });
    rt.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

async fn wait_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
