//! The `warren-perf` binary: parses flags and runs [`warren_perf::run`] on a multi-threaded
//! tokio runtime, or one of the modes that replace it (`--declare-queues`,
//! `--idle-connections`). Exit status 1 when the run could not start or a client failed.

use clap::Parser;

fn main() {
    let config = warren_perf::Config::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren-perf: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if config.declare_queues > 0 {
        let result = runtime.block_on(async {
            config.validate()?;
            warren_perf::declare::run(&config).await
        });
        finish(runtime, result.map(|s| s.ok()));
    }
    if config.idle_connections > 0 {
        let result = runtime.block_on(async {
            config.validate()?;
            warren_perf::idle::run(&config).await
        });
        finish(runtime, result.map(|s| s.errors.is_empty() && s.lost == 0));
    }
    match runtime.block_on(warren_perf::run(config)) {
        Ok(summary) if summary.errors.is_empty() => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("warren-perf: {e}");
            std::process::exit(1);
        }
    }
    // Tasks stuck on a dead peer must not keep the process alive.
    runtime.shutdown_background();
}

/// Ends a mode that replaces the run: exit status 0 only when it went well.
fn finish(runtime: tokio::runtime::Runtime, went_well: Result<bool, warren_perf::Error>) -> ! {
    // Tasks stuck on a dead peer must not keep the process alive.
    runtime.shutdown_background();
    match went_well {
        Ok(true) => std::process::exit(0),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("warren-perf: {e}");
            std::process::exit(1);
        }
    }
}
