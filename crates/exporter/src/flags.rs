//! kingpin-style `--collector.<name>` / `--no-collector.<name>` booleans for every collector.
//!
//! clap's derive cannot generate ~45 flag pairs from a table, so [`CollectorFlags`] implements
//! `clap::Args` by hand: the table [`crate::collectors::COLLECTORS`] is the single source of names and
//! defaults. The `--no-` forms are hidden from `--help` (each visible flag's help names its negation) so
//! the help stays readable. When both forms are given, the later one on the command line wins, as kingpin.

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use crate::collectors::COLLECTORS;

/// Explicit collector choices from the command line: `Some(true)` for `--collector.X`, `Some(false)` for
/// `--no-collector.X`, absent when not mentioned (then the default applies).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorFlags {
    pub explicit: Vec<(&'static str, bool)>,
    /// node_exporter 1.5 collectors ignis does not implement that were explicitly enabled. Their
    /// `--no-collector.X` is accepted silently (nothing to disable); enabling one is refused at startup
    /// with a clear message rather than silently producing nothing.
    pub unavailable: Vec<&'static str>,
}

/// Collectors node_exporter 1.5 registers on Linux (all disabled by default) that ignis does not have.
pub const NOT_IMPLEMENTED: &[&str] = &[
    "buddyinfo",
    "cgroups",
    "drbd",
    "drm",
    "ethtool",
    "interrupts",
    "ksmd",
    "lnstat",
    "logind",
    "meminfo_numa",
    "mountstats",
    "network_route",
    "ntp",
    "perf",
    "processes",
    "qdisc",
    "runit",
    "slabinfo",
    "supervisord",
    "sysctl",
    "systemd",
    "tcpstat",
    "wifi",
    "zoneinfo",
];

impl CollectorFlags {
    /// Whether `name` is enabled given defaults and `--collector.disable-defaults`.
    pub fn enabled(&self, name: &str, default: bool, disable_defaults: bool) -> bool {
        if let Some(&(_, v)) = self.explicit.iter().find(|(n, _)| *n == name) {
            return v;
        }
        default && !disable_defaults
    }
}

/// Index of the last occurrence of a SetTrue flag, if given.
fn last_index(m: &ArgMatches, id: &str) -> Option<usize> {
    if m.get_flag(id) {
        m.indices_of(id).and_then(|i| i.max())
    } else {
        None
    }
}

fn on_id(name: &str) -> String {
    format!("collector.{name}")
}
fn off_id(name: &str) -> String {
    format!("no-collector.{name}")
}

impl FromArgMatches for CollectorFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut s = CollectorFlags::default();
        s.update_from_arg_matches(m)?;
        Ok(s)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for name in NOT_IMPLEMENTED {
            let on = last_index(m, &on_id(name));
            let off = last_index(m, &off_id(name));
            let enabled = match (on, off) {
                (Some(a), Some(b)) => a > b,
                (on, _) => on.is_some(),
            };
            self.unavailable.retain(|n| n != name);
            if enabled {
                self.unavailable.push(name);
            }
        }
        for c in COLLECTORS {
            let on = last_index(m, &on_id(c.name));
            let off = last_index(m, &off_id(c.name));
            let v = match (on, off) {
                (Some(a), Some(b)) => Some(a > b),
                (Some(_), None) => Some(true),
                (None, Some(_)) => Some(false),
                (None, None) => None,
            };
            if let Some(v) = v {
                self.explicit.retain(|(n, _)| *n != c.name);
                self.explicit.push((c.name, v));
            }
        }
        Ok(())
    }
}

impl clap::Args for CollectorFlags {
    fn augment_args(mut cmd: Command) -> Command {
        for c in COLLECTORS {
            let state = if c.default_enabled {
                "enabled"
            } else {
                "disabled"
            };
            cmd = cmd
                .arg(
                    Arg::new(on_id(c.name))
                        .long(on_id(c.name))
                        .action(ArgAction::SetTrue)
                        .help(format!(
                            "Enable the {} collector (default: {state}; --no-collector.{} disables).",
                            c.name, c.name
                        )),
                )
                .arg(Arg::new(off_id(c.name)).long(off_id(c.name)).action(ArgAction::SetTrue).hide(true));
        }
        for name in NOT_IMPLEMENTED {
            cmd = cmd
                .arg(
                    Arg::new(on_id(name))
                        .long(on_id(name))
                        .action(ArgAction::SetTrue)
                        .hide(true),
                )
                .arg(
                    Arg::new(off_id(name))
                        .long(off_id(name))
                        .action(ArgAction::SetTrue)
                        .hide(true),
                );
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
