//! The `ignis` command line. This crate holds only argument parsing and dispatch; every subcommand's work lives
//! in a library crate.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "ignis", version, about = "Prometheus-compatible monitoring in one binary")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Scrape, store and query metrics (replaces the Prometheus server).
    Server(web::server::ServerArgs),
    /// Serve host metrics with node_exporter's names (replaces node_exporter).
    NodeExporter(exporter::Args),
    /// Validate configuration files (as promtool check).
    Check {
        #[command(subcommand)]
        what: CheckCmd,
    },
}

#[derive(Subcommand)]
enum CheckCmd {
    /// Check if the config files are valid or not.
    Config {
        /// The config files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn init_logging(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Server(args) => {
            init_logging(&args.log_level, &args.log_format);
            runtime()?.block_on(web::server::run(args)).context("ignis server")?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::NodeExporter(args) => {
            init_logging("info", "logfmt");
            runtime()?.block_on(exporter::run(args)).context("ignis node-exporter")?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { what: CheckCmd::Config { files } } => {
            let mut ok = true;
            for f in &files {
                let report = config::check_config(f);
                print!("{}", report.stdout);
                eprint!("{}", report.stderr);
                ok &= report.exit_code == 0;
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}
