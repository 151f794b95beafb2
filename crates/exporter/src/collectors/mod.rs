//! One module per node_exporter collector. Each reads its sources under the configured procfs / sysfs /
//! rootfs roots and emits into the shared [`Registry`]. A collector whose source is absent returns an
//! error, which the scrape loop turns into `node_scrape_collector_success{collector="X"} 0`, exactly as
//! node_exporter does; the other collectors are unaffected.

use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::expo::Registry;
use crate::{Args, ExporterError};

mod arp;
mod bcache;
mod bonding;
mod btrfs;
mod btrfs_ioctl;
mod conntrack;
mod cpu;
mod cpufreq;
mod diskstats;
mod dmi;
mod edac;
mod entropy;
mod fibrechannel;
mod filefd;
pub(crate) mod filesystem;
mod hwmon;
mod infiniband;
mod ipvs;
mod loadavg;
mod mdadm;
mod meminfo;
pub(crate) mod netclass;
mod netdev;
mod netstat;
mod nfs;
mod nvme;
mod os;
mod powersupply;
mod pressure;
pub(crate) mod process;
mod rapl;
mod schedstat;
mod selinux;
mod sockstat;
mod softnet;
mod stat;
mod tapestats;
mod textfile;
mod thermal_zone;
mod time;
mod timex;
mod udp_queues;
mod uname;
mod vmstat;
mod xfs;
mod zfs;

/// Why a collector produced no (or partial) data this scrape.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("{0}")]
    Other(String),
}

impl CollectError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        CollectError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub fn parse(path: &Path, msg: impl Into<String>) -> Self {
        CollectError::Parse {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
    /// Absent sources are expected on many hosts; they are logged at debug, everything else at warn.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CollectError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Include/exclude regex pair as node_exporter's deviceFilter.
#[derive(Clone, Debug, Default)]
pub struct DeviceFilter {
    exclude: Option<Regex>,
    include: Option<Regex>,
}

impl DeviceFilter {
    pub fn new(
        exclude: Option<&str>,
        include: Option<&str>,
        flag_ex: &'static str,
        flag_in: &'static str,
    ) -> Result<Self, ExporterError> {
        let exclude = exclude.filter(|s| !s.is_empty());
        let include = include.filter(|s| !s.is_empty());
        if exclude.is_some() && include.is_some() {
            return Err(ExporterError::Flags(format!(
                "--{flag_ex} and --{flag_in} are mutually exclusive"
            )));
        }
        Ok(DeviceFilter {
            exclude: exclude.map(|r| compile(r, flag_ex)).transpose()?,
            include: include.map(|r| compile(r, flag_in)).transpose()?,
        })
    }
    pub fn ignored(&self, name: &str) -> bool {
        self.exclude.as_ref().is_some_and(|r| r.is_match(name))
            || self.include.as_ref().is_some_and(|r| !r.is_match(name))
    }
}

fn compile(re: &str, flag: &'static str) -> Result<Regex, ExporterError> {
    Regex::new(re).map_err(|source| ExporterError::Regex { flag, source })
}

/// Resolved configuration shared by all collectors (paths and compiled filters).
#[derive(Debug)]
pub struct Config {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
    pub fs_mount_points_exclude: Regex,
    pub fs_types_exclude: Regex,
    pub fs_mount_timeout: std::time::Duration,
    pub netdev_filter: DeviceFilter,
    pub diskstats_filter: DeviceFilter,
    pub arp_filter: DeviceFilter,
    pub textfile_directory: Option<PathBuf>,
    pub cpu_guest: bool,
    pub cpu_info: bool,
    pub cpu_flags_include: Option<Regex>,
    pub cpu_bugs_include: Option<Regex>,
    pub stat_softirq: bool,
    pub netstat_fields: Regex,
    pub vmstat_fields: Regex,
    pub netclass_ignored: Regex,
    pub netclass_ignore_invalid_speed: bool,
    pub powersupply_ignored: Regex,
    pub tapestats_ignored: Regex,
    pub rapl_zone_label: bool,
    /// IPVS backend label names, in node_exporter's fixed order, filtered by --collector.ipvs.backend-labels.
    pub ipvs_backend_labels: Vec<&'static str>,
    pub bcache_priority_stats: bool,
    pub netdev_address_info: bool,
    pub netdev_detailed: bool,
    pub netdev_netlink: bool,
    pub netclass_netlink: bool,
    pub netclass_rtnl_with_stats: bool,
}

/// Every IPVS backend label in node_exporter's order.
pub const IPVS_BACKEND_LABELS: [&str; 6] = [
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "local_mark",
];

/// node_exporter's parseIpvsLabels: known labels kept in the fixed order, empty items ignored, unknown
/// ones an error listing them sorted.
pub fn parse_ipvs_labels(s: &str) -> Result<Vec<&'static str>, ExporterError> {
    let given: Vec<&str> = s.split(',').filter(|l| !l.is_empty()).collect();
    let mut unknown: Vec<&str> = given
        .iter()
        .copied()
        .filter(|l| !IPVS_BACKEND_LABELS.contains(l))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        unknown.dedup();
        return Err(ExporterError::Flags(format!(
            "unknown IPVS backend labels: {:?}",
            unknown.join(", ")
        )));
    }
    Ok(IPVS_BACKEND_LABELS
        .iter()
        .copied()
        .filter(|l| given.contains(l))
        .collect())
}

impl Config {
    pub fn from_args(a: &Args) -> Result<Self, ExporterError> {
        if let Some(name) = a.collectors.unavailable.first() {
            return Err(ExporterError::Flags(format!(
                "--collector.{name}: node_exporter's {name} collector (disabled by default there) is not implemented by ignis node-exporter"
            )));
        }
        let cpu_flags_include = a
            .cpu_flags_include
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|r| compile(r, "collector.cpu.info.flags-include"))
            .transpose()?;
        let cpu_bugs_include = a
            .cpu_bugs_include
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|r| compile(r, "collector.cpu.info.bugs-include"))
            .transpose()?;
        // node_exporter turns cpu.info on when an include filter is given.
        let cpu_info = a.cpu_info || cpu_flags_include.is_some() || cpu_bugs_include.is_some();
        Ok(Config {
            procfs: a.procfs.clone(),
            sysfs: a.sysfs.clone(),
            rootfs: a.rootfs.clone(),
            udev_data: a.udev_data.clone(),
            fs_mount_points_exclude: compile(
                &a.fs_mount_points_exclude,
                "collector.filesystem.mount-points-exclude",
            )?,
            fs_types_exclude: compile(
                &a.fs_types_exclude,
                "collector.filesystem.fs-types-exclude",
            )?,
            fs_mount_timeout: model::duration::parse_duration(&a.fs_mount_timeout)
                .ok()
                .filter(|ms| *ms > 0)
                .map(|ms| std::time::Duration::from_millis(ms as u64))
                .ok_or_else(|| {
                    ExporterError::Flags(format!(
                        "invalid --collector.filesystem.mount-timeout {:?}",
                        a.fs_mount_timeout
                    ))
                })?,
            netdev_filter: DeviceFilter::new(
                a.netdev_device_exclude.as_deref(),
                a.netdev_device_include.as_deref(),
                "collector.netdev.device-exclude",
                "collector.netdev.device-include",
            )?,
            // The diskstats exclude has a default; an explicit include replaces it, as in node_exporter.
            diskstats_filter: if a
                .diskstats_device_include
                .as_deref()
                .is_some_and(|s| !s.is_empty())
            {
                DeviceFilter::new(
                    None,
                    a.diskstats_device_include.as_deref(),
                    "collector.diskstats.device-exclude",
                    "collector.diskstats.device-include",
                )?
            } else {
                DeviceFilter::new(
                    Some(&a.diskstats_device_exclude),
                    None,
                    "collector.diskstats.device-exclude",
                    "collector.diskstats.device-include",
                )?
            },
            arp_filter: DeviceFilter::new(
                a.arp_device_exclude.as_deref(),
                a.arp_device_include.as_deref(),
                "collector.arp.device-exclude",
                "collector.arp.device-include",
            )?,
            textfile_directory: (!a.textfile_directory.is_empty())
                .then(|| PathBuf::from(&a.textfile_directory)),
            cpu_guest: !a.no_cpu_guest,
            cpu_info,
            cpu_flags_include,
            cpu_bugs_include,
            stat_softirq: a.stat_softirq,
            netstat_fields: compile(&a.netstat_fields, "collector.netstat.fields")?,
            vmstat_fields: compile(&a.vmstat_fields, "collector.vmstat.fields")?,
            netclass_ignored: compile(
                &a.netclass_ignored_devices,
                "collector.netclass.ignored-devices",
            )?,
            netclass_ignore_invalid_speed: a.netclass_ignore_invalid_speed,
            powersupply_ignored: compile(
                &a.powersupply_ignored,
                "collector.powersupply.ignored-supplies",
            )?,
            tapestats_ignored: compile(
                &a.tapestats_ignored,
                "collector.tapestats.ignored-devices",
            )?,
            rapl_zone_label: a.rapl_zone_label,
            ipvs_backend_labels: parse_ipvs_labels(&a.ipvs_backend_labels)?,
            bcache_priority_stats: a.bcache_priority_stats,
            netdev_address_info: a.netdev_address_info,
            netdev_detailed: a.netdev_detailed,
            netdev_netlink: !a.no_netdev_netlink,
            netclass_netlink: a.netclass_netlink,
            netclass_rtnl_with_stats: a.netclass_rtnl_with_stats,
        })
    }

    pub fn proc(&self, name: &str) -> PathBuf {
        crate::util::under(&self.procfs, name)
    }
    pub fn sys(&self, name: &str) -> PathBuf {
        crate::util::under(&self.sysfs, name)
    }
    pub fn root(&self, name: &str) -> PathBuf {
        crate::util::under(&self.rootfs, name)
    }
}

/// Scratch space handed to collectors so reads reuse buffers across scrapes.
#[derive(Default)]
pub struct Scratch {
    pub buf: Vec<u8>,
    pub buf2: Vec<u8>,
    pub name: String,
    pub help: String,
}

/// A node_exporter collector.
pub trait Collector: Send {
    fn update(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        out: &mut Registry,
    ) -> Result<(), CollectError>;
}

/// Name and default state of a collector, as registered in node_exporter 1.5 on Linux.
#[derive(Clone, Copy, Debug)]
pub struct CollectorInfo {
    pub name: &'static str,
    pub default_enabled: bool,
    build: fn() -> Box<dyn Collector>,
}

macro_rules! table {
    ($($name:literal => $ctor:expr),* $(,)?) => {
        &[$(CollectorInfo { name: $name, default_enabled: true, build: || Box::new($ctor) }),*]
    };
}

/// Every collector node_exporter 1.5 enables by default on Linux, in its name order.
pub const COLLECTORS: &[CollectorInfo] = table! {
    "arp" => arp::Arp::default(),
    "bcache" => bcache::Bcache,
    "bonding" => bonding::Bonding,
    "btrfs" => btrfs::Btrfs,
    "conntrack" => conntrack::Conntrack,
    "cpu" => cpu::Cpu::default(),
    "cpufreq" => cpufreq::Cpufreq,
    "diskstats" => diskstats::Diskstats::default(),
    "dmi" => dmi::Dmi,
    "edac" => edac::Edac,
    "entropy" => entropy::Entropy,
    "fibrechannel" => fibrechannel::Fibrechannel,
    "filefd" => filefd::Filefd,
    "filesystem" => filesystem::Filesystem::default(),
    "hwmon" => hwmon::Hwmon,
    "infiniband" => infiniband::Infiniband,
    "ipvs" => ipvs::Ipvs,
    "loadavg" => loadavg::Loadavg,
    "mdadm" => mdadm::Mdadm,
    "meminfo" => meminfo::Meminfo,
    "netclass" => netclass::Netclass,
    "netdev" => netdev::Netdev,
    "netstat" => netstat::Netstat,
    "nfs" => nfs::Nfs,
    "nfsd" => nfs::Nfsd,
    "nvme" => nvme::Nvme,
    "os" => os::Os::default(),
    "powersupplyclass" => powersupply::PowerSupply,
    "pressure" => pressure::Pressure,
    "rapl" => rapl::Rapl,
    "schedstat" => schedstat::Schedstat,
    "selinux" => selinux::Selinux,
    "sockstat" => sockstat::Sockstat,
    "softnet" => softnet::Softnet,
    "stat" => stat::Stat,
    "tapestats" => tapestats::Tapestats,
    "textfile" => textfile::Textfile,
    "thermal_zone" => thermal_zone::ThermalZone,
    "time" => time::Time,
    "timex" => timex::Timex,
    "udp_queues" => udp_queues::UdpQueues,
    "uname" => uname::Uname,
    "vmstat" => vmstat::Vmstat,
    "xfs" => xfs::Xfs,
    "zfs" => zfs::Zfs,
};

impl CollectorInfo {
    pub(crate) fn instantiate(&self) -> Box<dyn Collector> {
        (self.build)()
    }
}

/// Small helpers shared by collectors.
pub(crate) mod prelude {
    pub use super::{CollectError, Collector, Config, Scratch};
    pub use crate::expo::{fmt_u64, itoa_buf, MetricType, Registry};
    pub use crate::util::{read_attr, read_i64, read_str, read_u64, sorted_dir};
    pub use MetricType::{Counter, Gauge, Untyped};
}
