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
    /// Inspect and backfill TSDB data directories (as promtool tsdb).
    Tsdb {
        #[command(subcommand)]
        what: TsdbCmd,
    },
}

#[derive(Subcommand)]
enum TsdbCmd {
    /// List blocks of a data directory.
    List {
        /// Print human readable values.
        #[arg(short = 'r', long = "human-readable")]
        human_readable: bool,
        /// Database path.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
    },
    /// Dump samples from a data directory (blocks and WAL).
    Dump {
        /// Minimum timestamp to dump (ms).
        #[arg(long = "min-time", default_value_t = i64::MIN, allow_negative_numbers = true)]
        min_time: i64,
        /// Maximum timestamp to dump (ms).
        #[arg(long = "max-time", default_value_t = i64::MAX, allow_negative_numbers = true)]
        max_time: i64,
        /// Series selector.
        #[arg(long = "match", default_value = "{__name__=~'(?s:.*)'}")]
        matcher: String,
        /// Database path.
        #[arg(default_value = "data/")]
        db_path: PathBuf,
    },
    /// Create blocks of data for new recording rules or from other sources.
    CreateBlocksFrom {
        #[command(subcommand)]
        from: CreateFrom,
    },
}

#[derive(Subcommand)]
enum CreateFrom {
    /// Import samples from OpenMetrics input and produce TSDB blocks.
    Openmetrics {
        /// Print human readable values.
        #[arg(short = 'r', long = "human-readable")]
        human_readable: bool,
        /// Do not print created blocks.
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Maximum duration created blocks may span.
        #[arg(long = "max-block-duration")]
        max_block_duration: Option<String>,
        /// OpenMetrics file to read samples from.
        input: PathBuf,
        /// Output directory for generated blocks.
        #[arg(default_value = "data/")]
        output: PathBuf,
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
            init_logging(&args.log_level, &args.log_format);
            runtime()?.block_on(exporter::run(args)).context("ignis node-exporter")?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Tsdb { what } => run_tsdb(what),
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

fn run_tsdb(cmd: TsdbCmd) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match cmd {
        TsdbCmd::List { human_readable, db_path } => {
            tsdb::tools::list_blocks(&db_path, human_readable, &mut out)
                .with_context(|| format!("listing blocks of {}", db_path.display()))?;
        }
        TsdbCmd::Dump { min_time, max_time, matcher, db_path } => {
            let ms = promql::parse_metric_selector(&matcher).with_context(|| format!("--match {matcher:?}"))?;
            tsdb::tools::dump(&db_path, &ms, min_time, max_time, &mut out)
                .with_context(|| format!("dumping {}", db_path.display()))?;
        }
        TsdbCmd::CreateBlocksFrom { from: CreateFrom::Openmetrics { human_readable, quiet, max_block_duration, input, output } } => {
            let max = match max_block_duration {
                Some(d) => model::duration::parse_duration(&d).with_context(|| format!("--max-block-duration {d:?}"))?,
                None => 0,
            };
            let opts = tsdb::backfill::BackfillOptions {
                max_block_duration_ms: max,
                human_readable,
                quiet,
                ..Default::default()
            };
            tsdb::backfill::create_blocks_from_openmetrics_to(&input, &output, opts, &mut out)
                .with_context(|| format!("creating blocks from {}", input.display()))?;
        }
    }
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}
