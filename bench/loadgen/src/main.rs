//! `loadgen`: the load and dataset generator of ignis's side-by-side benchmark (see bench/README.md).
//!
//! ```text
//! loadgen serve   --targets N --series-per-target M [--listen 127.0.0.1:9500] [--interval 15s]
//!                 [--churn-every 10m --churn-fraction 0.1] [--gzip] [--render-threads 1] [--seed 1]
//! loadgen dataset --targets N --series-per-target M [--hours 24] [--end UNIX_SECONDS] [--interval 15s]
//!                 [--ts-unit s|ms] [--out FILE|-] [--job bench] [--instance-prefix loadgen-] [churn, seed]
//! loadgen describe --targets N --series-per-target M
//! ```

mod dataset;
mod rng;
mod serve;
mod sim;

use sim::{Workload, GROUP_SERIES};
use std::collections::HashMap;
use std::process::ExitCode;

struct Flags {
    map: HashMap<String, String>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let Some(name) = a.strip_prefix("--") else { return Err(format!("unexpected argument {a:?}")) };
            if let Some((k, v)) = name.split_once('=') {
                map.insert(k.to_string(), v.to_string());
            } else if i + 1 < args.len() && !args[i + 1].starts_with("--") {
                map.insert(name.to_string(), args[i + 1].clone());
                i += 1;
            } else {
                map.insert(name.to_string(), "true".to_string());
            }
            i += 1;
        }
        Ok(Flags { map })
    }

    fn str(&mut self, k: &str, default: &str) -> String {
        self.map.remove(k).unwrap_or_else(|| default.to_string())
    }

    fn num<T: std::str::FromStr>(&mut self, k: &str, default: T) -> Result<T, String> {
        match self.map.remove(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{k}: not a number: {v:?}")),
        }
    }

    fn dur(&mut self, k: &str, default: u64) -> Result<u64, String> {
        match self.map.remove(k) {
            None => Ok(default),
            Some(v) => parse_duration_s(&v).ok_or_else(|| format!("--{k}: bad duration {v:?} (use 15s, 10m, 2h)")),
        }
    }

    fn flag(&mut self, k: &str) -> bool {
        matches!(self.map.remove(k).as_deref(), Some("true" | "1" | "yes"))
    }

    fn finish(self) -> Result<(), String> {
        match self.map.keys().next() {
            Some(k) => Err(format!("unknown flag --{k}")),
            None => Ok(()),
        }
    }
}

fn parse_duration_s(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return None,
    })
}

fn workload(f: &mut Flags) -> Result<Workload, String> {
    let targets: usize = f.num("targets", 1)?;
    let spt: usize = f.num("series-per-target", 1024)?;
    if targets == 0 || spt == 0 {
        return Err("--targets and --series-per-target must be positive".into());
    }
    let w = Workload {
        seed: f.num("seed", 1)?,
        targets,
        groups_per_target: spt.div_ceil(GROUP_SERIES),
        interval_s: f.dur("interval", 15)?.max(1),
        churn_every_s: f.dur("churn-every", 0)?,
        churn_fraction: f.num("churn-fraction", 0.0)?,
    };
    if !(0.0..=1.0).contains(&w.churn_fraction) {
        return Err("--churn-fraction must be within [0, 1]".into());
    }
    Ok(w)
}

fn run(args: &[String]) -> Result<(), String> {
    let Some(cmd) = args.first() else { return Err("usage: loadgen serve|dataset|describe [flags]".into()) };
    let mut f = Flags::parse(&args[1..])?;
    let w = workload(&mut f)?;
    match cmd.as_str() {
        "serve" => {
            let a = serve::ServeArgs {
                listen: f.str("listen", "127.0.0.1:9500"),
                gzip: f.flag("gzip"),
                render_threads: f.num("render-threads", 1)?,
            };
            f.finish()?;
            serve::serve(w, a).map_err(|e| format!("serve: {e}"))
        }
        "dataset" => {
            let hours: u64 = f.num("hours", 24)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|e| e.to_string())?
                .as_secs();
            let end: u64 = f.num("end", now)?;
            let end_tick = end / w.interval_s;
            let start_tick = end_tick.saturating_sub(hours * 3600 / w.interval_s);
            let unit = f.str("ts-unit", "s");
            let a = dataset::DatasetArgs {
                start_tick,
                end_tick,
                ts_ms: match unit.as_str() {
                    "s" => false,
                    "ms" => true,
                    _ => return Err(format!("--ts-unit: {unit:?} (want s or ms)")),
                },
                job: f.str("job", "bench"),
                instance_prefix: f.str("instance-prefix", "loadgen-"),
            };
            let out = f.str("out", "-");
            f.finish()?;
            let started = std::time::Instant::now();
            let st = if out == "-" {
                dataset::write_dataset(&w, &a, std::io::stdout().lock())
            } else {
                let file = std::fs::File::create(&out).map_err(|e| format!("{out}: {e}"))?;
                dataset::write_dataset(&w, &a, file)
            }
            .map_err(|e| format!("writing dataset: {e}"))?;
            eprintln!(
                "{{\"samples\":{},\"series\":{},\"bytes\":{},\"start\":{},\"end\":{},\"seconds\":{:.1}}}",
                st.samples,
                st.series,
                st.bytes,
                a.start_tick * w.interval_s,
                a.end_tick * w.interval_s,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        "describe" => {
            f.finish()?;
            let tl: [(&str, &str); 2] = [("job", "bench"), ("instance", "loadgen-0")];
            let (mut b, mut c, mut p) = (0usize, 0usize, 0usize);
            let n = w.groups_per_target.min(1000);
            for g in 0..n {
                let grp = sim::Group::birth(&w, 0, g, 0, &tl);
                b += grp.label_value_bytes;
                c += grp.label_count;
                p += grp.prefix.len();
            }
            let s = (n * GROUP_SERIES) as f64;
            println!(
                "{{\"targets\":{},\"series_per_target\":{},\"total_series\":{},\"avg_labels_incl_name\":{:.2},\"avg_label_value_bytes\":{:.1},\"avg_series_text_bytes\":{:.1}}}",
                w.targets,
                w.series_per_target(),
                w.total_series(),
                c as f64 / s + 1.0,
                b as f64 / s,
                p as f64 / s
            );
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
