//! `ignis node-exporter`: a node_exporter 1.5 compatible host metrics exporter for Linux.
//!
//! Entry points: [`Args`] (flags, as node_exporter spells them), [`router`] (the axum app, for in-process
//! use) and [`run`] (bind and serve until ctrl-c / SIGTERM).
//!
//! Code map: `expo` is the exposition encoder (text 0.0.4 / OpenMetrics into a reused buffer);
//! `collectors/*` one file per node_exporter collector, each reading /proc or /sys under the configured
//! roots; `scrape` runs the enabled collectors and adds `node_scrape_collector_*`; `server` is HTTP.
//!
//! Architecture invariant: metric names, HELP text, label names and TYPE are node_exporter's exactly —
//! dashboards and recording rules key on them. Where node_exporter has a quirk (untyped netstat values,
//! HELP strings with typos), we reproduce it.

mod collectors;
mod expo;
mod flags;
mod scrape;
mod server;
mod util;

use std::path::PathBuf;

pub use collectors::COLLECTORS;
pub use expo::Format;
pub use flags::CollectorFlags;

/// Errors of the exporter crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    #[error("invalid regular expression for --{flag}: {source}")]
    Regex {
        flag: &'static str,
        #[source]
        source: regex::Error,
    },
    #[error("invalid flags: {0}")]
    Flags(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Serve(#[source] std::io::Error),
}

/// Command-line flags of `ignis node-exporter`, named as node_exporter's.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Address on which to expose metrics and web interface.
    #[arg(
        long = "web.listen-address",
        default_value = ":9100",
        overrides_with = "listen_address"
    )]
    pub listen_address: String,
    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        default_value = "/metrics",
        overrides_with = "telemetry_path"
    )]
    pub telemetry_path: String,
    /// Exclude metrics about the exporter itself (process_*).
    #[arg(long = "web.disable-exporter-metrics")]
    pub disable_exporter_metrics: bool,
    /// Maximum number of parallel scrape requests. Use 0 to disable.
    #[arg(
        long = "web.max-requests",
        default_value_t = 40,
        overrides_with = "max_requests"
    )]
    pub max_requests: usize,
    /// procfs mountpoint.
    #[arg(
        long = "path.procfs",
        default_value = "/proc",
        overrides_with = "procfs"
    )]
    pub procfs: PathBuf,
    /// sysfs mountpoint.
    #[arg(long = "path.sysfs", default_value = "/sys", overrides_with = "sysfs")]
    pub sysfs: PathBuf,
    /// rootfs mountpoint.
    #[arg(long = "path.rootfs", default_value = "/", overrides_with = "rootfs")]
    pub rootfs: PathBuf,
    /// udev data path.
    #[arg(
        long = "path.udev.data",
        default_value = "/run/udev/data",
        overrides_with = "udev_data"
    )]
    pub udev_data: PathBuf,
    /// Set all collectors to disabled by default.
    #[arg(long = "collector.disable-defaults")]
    pub disable_defaults: bool,
    /// Regexp of mount points to exclude for filesystem collector.
    #[arg(
        long = "collector.filesystem.mount-points-exclude",
        default_value = "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
        overrides_with = "fs_mount_points_exclude"
    )]
    pub fs_mount_points_exclude: String,
    /// Regexp of filesystem types to exclude for filesystem collector.
    #[arg(
        long = "collector.filesystem.fs-types-exclude",
        default_value = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
        overrides_with = "fs_types_exclude"
    )]
    pub fs_types_exclude: String,
    /// How long to wait for a mount to respond before marking it as stale.
    #[arg(
        long = "collector.filesystem.mount-timeout",
        default_value = "5s",
        hide = true,
        overrides_with = "fs_mount_timeout"
    )]
    pub fs_mount_timeout: String,
    /// Regexp of net devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.netdev.device-exclude",
        overrides_with = "netdev_device_exclude"
    )]
    pub netdev_device_exclude: Option<String>,
    /// Regexp of net devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.netdev.device-include",
        overrides_with = "netdev_device_include"
    )]
    pub netdev_device_include: Option<String>,
    /// Regexp of diskstats devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.diskstats.device-exclude",
        default_value = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$",
        overrides_with = "diskstats_device_exclude"
    )]
    pub diskstats_device_exclude: String,
    /// Regexp of diskstats devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.diskstats.device-include",
        overrides_with = "diskstats_device_include"
    )]
    pub diskstats_device_include: Option<String>,
    /// Regexp of arp devices to exclude (mutually exclusive to device-include).
    #[arg(
        long = "collector.arp.device-exclude",
        overrides_with = "arp_device_exclude"
    )]
    pub arp_device_exclude: Option<String>,
    /// Regexp of arp devices to include (mutually exclusive to device-exclude).
    #[arg(
        long = "collector.arp.device-include",
        overrides_with = "arp_device_include"
    )]
    pub arp_device_include: Option<String>,
    /// Directory to read text files with metrics from.
    #[arg(
        long = "collector.textfile.directory",
        default_value = "",
        overrides_with = "textfile_directory"
    )]
    pub textfile_directory: String,
    /// Enables metric node_cpu_guest_seconds_total (--no-collector.cpu.guest disables).
    #[arg(
        long = "collector.cpu.guest",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        overrides_with = "cpu_guest"
    )]
    pub cpu_guest: bool,
    /// kingpin-style negation of --collector.cpu.guest.
    #[arg(long = "no-collector.cpu.guest", hide = true)]
    pub no_cpu_guest: bool,
    /// Enables metric cpu_info.
    #[arg(long = "collector.cpu.info")]
    pub cpu_info: bool,
    /// Filter the `flags` field in cpuInfo with a value that must be a regular expression.
    #[arg(
        long = "collector.cpu.info.flags-include",
        overrides_with = "cpu_flags_include"
    )]
    pub cpu_flags_include: Option<String>,
    /// Filter the `bugs` field in cpuInfo with a value that must be a regular expression.
    #[arg(
        long = "collector.cpu.info.bugs-include",
        overrides_with = "cpu_bugs_include"
    )]
    pub cpu_bugs_include: Option<String>,
    /// Export softirq calls per vector.
    #[arg(long = "collector.stat.softirq")]
    pub stat_softirq: bool,
    /// Regexp of fields to return for netstat collector.
    #[arg(
        long = "collector.netstat.fields",
        default_value = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$",
        overrides_with = "netstat_fields"
    )]
    pub netstat_fields: String,
    /// Regexp of fields to return for vmstat collector.
    #[arg(
        long = "collector.vmstat.fields",
        default_value = "^(oom_kill|pgpg|pswp|pg.*fault).*",
        overrides_with = "vmstat_fields"
    )]
    pub vmstat_fields: String,
    /// Regexp of net devices to ignore for netclass collector.
    #[arg(
        long = "collector.netclass.ignored-devices",
        default_value = "^$",
        overrides_with = "netclass_ignored_devices"
    )]
    pub netclass_ignored_devices: String,
    /// Ignore devices where the speed is invalid.
    #[arg(long = "collector.netclass.ignore-invalid-speed")]
    pub netclass_ignore_invalid_speed: bool,
    /// Regexp of power supplies to ignore for powersupplyclass collector.
    #[arg(
        long = "collector.powersupply.ignored-supplies",
        default_value = "^$",
        overrides_with = "powersupply_ignored"
    )]
    pub powersupply_ignored: String,
    /// Regexp of devices to ignore for tapestats.
    #[arg(
        long = "collector.tapestats.ignored-devices",
        default_value = "^$",
        overrides_with = "tapestats_ignored"
    )]
    pub tapestats_ignored: String,
    /// Enables the zone label on rapl metrics.
    #[arg(long = "collector.rapl.enable-zone-label")]
    pub rapl_zone_label: bool,
    #[command(flatten)]
    pub collectors: CollectorFlags,
}

impl Default for Args {
    fn default() -> Self {
        use clap::{Args as _, FromArgMatches};
        let cmd = Args::augment_args(clap::Command::new("node-exporter"));
        let m = cmd.get_matches_from(["node-exporter"]);
        // Defaults are compile-time constants; failing here is a programming error.
        Args::from_arg_matches(&m).expect("BUG: default flags must parse")
    }
}

/// Builds the HTTP app: `/` landing page and the telemetry path (default `/metrics`).
pub fn router(args: &Args) -> Result<axum::Router, ExporterError> {
    server::router(args)
}

/// Binds `--web.listen-address` and serves until ctrl-c or SIGTERM.
pub async fn run(args: Args) -> Result<(), ExporterError> {
    server::run(args).await
}
