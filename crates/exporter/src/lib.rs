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
mod glob;
mod scrape;
mod server;
mod util;
pub mod webconfig;

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
    #[error("--web.config.file: {0}")]
    WebConfig(#[from] webconfig::WebConfigError),
}

/// Command-line flags of `ignis node-exporter`, named as node_exporter's.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Addresses on which to expose metrics and web interface. Repeatable to add multiple addresses.
    #[arg(long = "web.listen-address", default_value = ":9100", action = clap::ArgAction::Append)]
    pub listen_address: Vec<String>,
    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        default_value = "/metrics",
        overrides_with = "telemetry_path"
    )]
    pub telemetry_path: String,
    /// Exclude metrics about the exporter itself (process_*).
    #[arg(
        long = "web.disable-exporter-metrics",
        overrides_with = "no_disable_exporter_metrics"
    )]
    pub disable_exporter_metrics: bool,
    #[arg(
        long = "no-web.disable-exporter-metrics",
        hide = true,
        overrides_with = "disable_exporter_metrics"
    )]
    pub no_disable_exporter_metrics: bool,
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
    #[arg(
        long = "collector.disable-defaults",
        overrides_with = "no_disable_defaults"
    )]
    pub disable_defaults: bool,
    #[arg(
        long = "no-collector.disable-defaults",
        hide = true,
        overrides_with = "disable_defaults"
    )]
    pub no_disable_defaults: bool,
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
    /// Enables metric node_cpu_guest_seconds_total (default: enabled; --no-collector.cpu.guest disables).
    #[arg(long = "collector.cpu.guest", overrides_with = "no_cpu_guest")]
    pub cpu_guest: bool,
    /// kingpin-style negation of --collector.cpu.guest (default: enabled).
    #[arg(
        long = "no-collector.cpu.guest",
        hide = true,
        overrides_with = "cpu_guest"
    )]
    pub no_cpu_guest: bool,
    /// Enables metric cpu_info.
    #[arg(long = "collector.cpu.info", overrides_with = "no_cpu_info")]
    pub cpu_info: bool,
    #[arg(
        long = "no-collector.cpu.info",
        hide = true,
        overrides_with = "cpu_info"
    )]
    pub no_cpu_info: bool,
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
    #[arg(long = "collector.stat.softirq", overrides_with = "no_stat_softirq")]
    pub stat_softirq: bool,
    #[arg(
        long = "no-collector.stat.softirq",
        hide = true,
        overrides_with = "stat_softirq"
    )]
    pub no_stat_softirq: bool,
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
    #[arg(
        long = "collector.netclass.ignore-invalid-speed",
        overrides_with = "no_netclass_ignore_invalid_speed"
    )]
    pub netclass_ignore_invalid_speed: bool,
    #[arg(
        long = "no-collector.netclass.ignore-invalid-speed",
        hide = true,
        overrides_with = "netclass_ignore_invalid_speed"
    )]
    pub no_netclass_ignore_invalid_speed: bool,
    /// Use netlink to gather stats instead of /proc/net/dev (ignis reads the same link attributes from sysfs).
    #[arg(
        long = "collector.netclass.netlink",
        overrides_with = "no_netclass_netlink"
    )]
    pub netclass_netlink: bool,
    #[arg(
        long = "no-collector.netclass.netlink",
        hide = true,
        overrides_with = "netclass_netlink"
    )]
    pub no_netclass_netlink: bool,
    /// Expose the statistics for each network device, replacing netdev collector (with --collector.netclass.netlink).
    #[arg(
        long = "collector.netclass_rtnl.with-stats",
        overrides_with = "no_netclass_rtnl_with_stats"
    )]
    pub netclass_rtnl_with_stats: bool,
    #[arg(
        long = "no-collector.netclass_rtnl.with-stats",
        hide = true,
        overrides_with = "netclass_rtnl_with_stats"
    )]
    pub no_netclass_rtnl_with_stats: bool,
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
    #[arg(
        long = "collector.rapl.enable-zone-label",
        overrides_with = "no_rapl_zone_label"
    )]
    pub rapl_zone_label: bool,
    #[arg(
        long = "no-collector.rapl.enable-zone-label",
        hide = true,
        overrides_with = "rapl_zone_label"
    )]
    pub no_rapl_zone_label: bool,
    /// Expose expensive priority stats.
    #[arg(
        long = "collector.bcache.priorityStats",
        overrides_with = "no_bcache_priority_stats"
    )]
    pub bcache_priority_stats: bool,
    #[arg(
        long = "no-collector.bcache.priorityStats",
        hide = true,
        overrides_with = "bcache_priority_stats"
    )]
    pub no_bcache_priority_stats: bool,
    /// Collect address-info for every device.
    #[arg(
        long = "collector.netdev.address-info",
        overrides_with = "no_netdev_address_info"
    )]
    pub netdev_address_info: bool,
    #[arg(
        long = "no-collector.netdev.address-info",
        hide = true,
        overrides_with = "netdev_address_info"
    )]
    pub no_netdev_address_info: bool,
    /// Use (incompatible) metric names that provide more detailed stats on Linux.
    #[arg(
        long = "collector.netdev.enable-detailed-metrics",
        overrides_with = "no_netdev_detailed"
    )]
    pub netdev_detailed: bool,
    #[arg(
        long = "no-collector.netdev.enable-detailed-metrics",
        hide = true,
        overrides_with = "netdev_detailed"
    )]
    pub no_netdev_detailed: bool,
    /// Use netlink to gather stats instead of /proc/net/dev (default: enabled; ignis reads the same rtnl_link_stats64 counters from sysfs).
    #[arg(
        long = "collector.netdev.netlink",
        overrides_with = "no_netdev_netlink"
    )]
    pub netdev_netlink: bool,
    /// kingpin-style negation of --collector.netdev.netlink (default: enabled).
    #[arg(
        long = "no-collector.netdev.netlink",
        hide = true,
        overrides_with = "netdev_netlink"
    )]
    pub no_netdev_netlink: bool,
    /// Comma separated list for IPVS backend stats labels.
    #[arg(
        long = "collector.ipvs.backend-labels",
        default_value = "local_address,local_port,remote_address,remote_port,proto,local_mark",
        overrides_with = "ipvs_backend_labels"
    )]
    pub ipvs_backend_labels: String,
    /// [EXPERIMENTAL] Path to configuration file that can enable TLS or authentication (exporter-toolkit
    /// web config: tls_server_config, basic_auth_users, http_server_config).
    #[arg(
        long = "web.config.file",
        default_value = "",
        overrides_with = "web_config_file"
    )]
    pub web_config_file: String,
    /// Use systemd socket activation listeners instead of port listeners (Linux only).
    #[arg(long = "web.systemd-socket", overrides_with = "no_web_systemd_socket")]
    pub web_systemd_socket: bool,
    #[arg(
        long = "no-web.systemd-socket",
        hide = true,
        overrides_with = "web_systemd_socket"
    )]
    pub no_web_systemd_socket: bool,
    /// Only log messages with the given severity or above. One of: [debug, info, warn, error].
    #[arg(
        long = "log.level",
        default_value = "info",
        value_parser = ["debug", "info", "warn", "error"],
        overrides_with = "log_level"
    )]
    pub log_level: String,
    /// Output format of log messages. One of: [logfmt, json].
    #[arg(
        long = "log.format",
        default_value = "logfmt",
        value_parser = ["logfmt", "json"],
        overrides_with = "log_format"
    )]
    pub log_format: String,
    /// The target number of CPUs Go would run on (GOMAXPROCS). Accepted for compatibility; ignis's
    /// runtime size is fixed by the binary (one worker thread for `ignis-node-exporter`).
    #[arg(
        long = "runtime.gomaxprocs",
        default_value_t = 1,
        overrides_with = "runtime_gomaxprocs"
    )]
    pub runtime_gomaxprocs: i64,
    /// Show application version.
    #[arg(long = "version")]
    pub version: bool,
    /// Generate long help (kingpin's --help-long; same as --help here).
    #[arg(long = "help-long")]
    pub help_long: bool,
    /// Generate a man page (kingpin's --help-man; prints the long help here).
    #[arg(long = "help-man", hide = true)]
    pub help_man: bool,
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

/// Binds `--web.listen-address` (or takes systemd's sockets) and serves until ctrl-c or SIGTERM.
/// `--version` / `--help-long` print and return without serving.
pub async fn run(args: Args) -> Result<(), ExporterError> {
    if args.version {
        println!("{}", version_text());
        return Ok(());
    }
    if args.help_long || args.help_man {
        use clap::Args as _;
        let mut cmd = Args::augment_args(clap::Command::new("node-exporter"));
        println!("{}", cmd.render_long_help());
        return Ok(());
    }
    server::run(args).await
}

/// What `--version` prints (node_exporter's layout; this is ignis, speaking node_exporter 1.5's format).
pub fn version_text() -> String {
    format!(
        "node_exporter (ignis node-exporter), version {} (node_exporter 1.5.0 compatible)\n  platform: {}/{}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
