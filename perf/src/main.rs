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
        match result {
            Ok(s) if s.ok() => {}
            Ok(_) => std::process::exit(1),
            Err(e) => {
                eprintln!("warren-perf: {e}");
                std::process::exit(1);
            }
        }
        runtime.shutdown_background();
        return;
    }
    if config.idle_connections > 0 {
        let result = runtime.block_on(async {
            config.validate()?;
            warren_perf::idle::run(&config).await
        });
        match result {
            Ok(s) if s.errors.is_empty() && s.lost == 0 => {}
            Ok(_) => std::process::exit(1),
            Err(e) => {
                eprintln!("warren-perf: {e}");
                std::process::exit(1);
            }
        }
        runtime.shutdown_background();
        return;
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
