//! Standalone `node-exporter` binary of the exporter crate, for side-by-side measurements against
//! node_exporter (RSS of a separate process). Users run `ignis node-exporter`, which calls the same
//! `exporter::run`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "ignis-node-exporter",
    about = "node_exporter-compatible host metrics exporter"
)]
struct Cli {
    #[command(flatten)]
    args: exporter::Args,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One worker thread is plenty: scrapes run on the blocking pool and are serialised anyway.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ignis-node-exporter: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(exporter::run(cli.args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ignis-node-exporter: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
