use candles_web::{init_logging, Args};
use clap::Parser;
use std::time::Duration;

fn main() {
    let args = Args::parse();
    init_logging(args.log_format);
    if let Err(e) = args.validate() {
        eprintln!("candles-web: {e:#}");
        std::process::exit(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("candles-web: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async move {
        let (trigger, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let signal = wait_signal().await;
            tracing::info!(signal, "shutting down");
            let _ = trigger.send(true);
            // Whatever is still running, the process is gone within a second of the signal.
            tokio::time::sleep(Duration::from_millis(800)).await;
            tracing::warn!("shutdown took too long, exiting now");
            std::process::exit(0);
        });
        match candles_web::run(args, shutdown).await {
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
