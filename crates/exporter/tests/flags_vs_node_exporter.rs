//! Flag compatibility with node_exporter 1.5: every flag Debian's `prometheus-node-exporter --help` lists
//! for the collectors ignis has (and every global flag) is accepted by ours, bool flags in both kingpin
//! forms (`--x` / `--no-x`), value flags with node_exporter's default value; and every flag our help shows
//! is one node_exporter has. Skips when node_exporter is absent.

use std::path::Path;
use std::process::Command;

use clap::{CommandFactory, Parser};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

#[derive(Parser)]
#[command(name = "ignis")]
struct Cli {
    #[command(flatten)]
    args: exporter::Args,
}

/// (flag name without dashes, Some(default or placeholder) for value flags, None for bools).
fn help_flags(help: &str) -> Vec<(String, Option<String>)> {
    let mut v = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let t = t.strip_prefix("-h, ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("--") else {
            continue;
        };
        // "name=VALUE  help" or "name  help"; a value may be quoted and contain spaces? (Defaults here
        // do not.) The value ends at the first whitespace.
        let tok = rest.split_whitespace().next().unwrap_or("");
        match tok.split_once('=') {
            Some((name, val)) => {
                let val = val.trim_matches('"').replace("\\\\", "\\");
                v.push((name.to_string(), Some(val)));
            }
            None => v.push((tok.to_string(), None)),
        }
    }
    v
}

/// The collector a `collector.*` flag belongs to (node_exporter's few irregular prefixes mapped).
fn collector_of(flag: &str) -> Option<&str> {
    let rest = flag.strip_prefix("collector.")?;
    let head = rest.split('.').next().unwrap_or(rest);
    Some(match head {
        "netclass_rtnl" => "netclass",
        "powersupply" => "powersupplyclass",
        "qdisk" => "qdisc",
        h => h,
    })
}

#[test]
fn node_exporter_flags_are_accepted() {
    if !Path::new(NODE_EXPORTER).exists() {
        println!("SKIP: {NODE_EXPORTER} not installed; flag comparison not run");
        return;
    }
    let out = Command::new(NODE_EXPORTER)
        .arg("--help")
        .output()
        .expect("run node_exporter --help");
    let help =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let flags = help_flags(&help);
    assert!(
        flags.len() > 100,
        "could not parse node_exporter --help:\n{help}"
    );
    let ours: Vec<&str> = exporter::COLLECTORS.iter().map(|c| c.name).collect();

    let mut failures = Vec::new();
    let mut checked = 0;
    let mut skipped = Vec::new();
    for (name, val) in &flags {
        if name == "help" {
            continue; // clap's own
        }
        let coll = collector_of(name);
        let is_enable_flag =
            coll.is_some_and(|c| c != "disable-defaults" && name == &format!("collector.{c}"));
        let in_scope = match coll {
            None => true,
            Some("disable-defaults") => true,
            Some(c) => ours.contains(&c) || is_enable_flag,
        };
        if !in_scope {
            skipped.push(name.clone());
            continue;
        }
        let forms: Vec<String> = match val {
            Some(v) => vec![format!("--{name}={v}")],
            None if name == "version" || name.starts_with("help-") => vec![format!("--{name}")],
            None => vec![format!("--{name}"), format!("--no-{name}")],
        };
        for f in forms {
            checked += 1;
            match Cli::try_parse_from(["ignis", f.as_str()]) {
                Err(e) => failures.push(format!("{f}: refused: {}", e.kind())),
                Ok(cli) => {
                    // Collectors ignis lacks may be named but not enabled; everything else must also
                    // build a working configuration.
                    let unimplemented_enable = is_enable_flag
                        && coll.is_some_and(|c| !ours.contains(&c))
                        && !f.starts_with("--no-");
                    let r = exporter::router(&cli.args);
                    if unimplemented_enable {
                        if r.is_ok() {
                            failures.push(format!(
                                "{f}: enabling an unimplemented collector must fail"
                            ));
                        }
                    } else if let Err(e) = r {
                        failures.push(format!("{f}: accepted but configuration fails: {e}"));
                    }
                }
            }
        }
    }

    // The other direction: nothing in our help that node_exporter does not have.
    let mut cmd = Cli::command();
    let our_help = cmd.render_long_help().to_string();
    for (name, _) in help_flags(&our_help) {
        if name != "help" && !flags.iter().any(|(n, _)| *n == name) {
            failures.push(format!("--{name}: ours, not node_exporter 1.5's"));
        }
    }
    println!(
        "checked {checked} flag forms; out of scope (options of collectors ignis lacks): {}",
        skipped.join(" ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn kingpin_later_flag_wins() {
    let a = Cli::parse_from([
        "ignis",
        "--no-collector.netdev.netlink",
        "--collector.netdev.netlink",
    ]);
    assert!(!a.args.no_netdev_netlink);
    let a = Cli::parse_from([
        "ignis",
        "--collector.netdev.netlink",
        "--no-collector.netdev.netlink",
    ]);
    assert!(a.args.no_netdev_netlink);
    let a = Cli::parse_from(["ignis", "--collector.cpu.info", "--no-collector.cpu.info"]);
    assert!(!a.args.cpu_info);
    let a = Cli::parse_from(["ignis", "--no-collector.systemd"]);
    assert!(
        exporter::router(&a.args).is_ok(),
        "disabling an absent collector is fine"
    );
    let a = Cli::parse_from(["ignis", "--collector.systemd", "--no-collector.systemd"]);
    assert!(exporter::router(&a.args).is_ok());
    let a = Cli::parse_from(["ignis", "--collector.systemd"]);
    let Err(e) = exporter::router(&a.args) else {
        panic!("enabling an unimplemented collector must be refused");
    };
    assert!(e.to_string().contains("systemd"), "{e}");
    let a = Cli::parse_from([
        "ignis",
        "--web.listen-address=:1",
        "--web.listen-address=:2",
    ]);
    assert_eq!(a.args.listen_address, [":1", ":2"], "repeatable as in 1.5");
    assert!(Cli::try_parse_from(["ignis", "--log.level=verbose"]).is_err());
    assert!(
        Cli::try_parse_from(["ignis", "--collector.ipvs.backend-labels=nope"])
            .map(|c| exporter::router(&c.args).is_err())
            .unwrap_or(false)
    );
}
