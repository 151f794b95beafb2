//! Small tool for compatibility checks against Prometheus's promtool:
//!   tsdb_tool gen <dir> <series> <hours>   write a data dir with blocks (then `promtool tsdb analyze|dump`)
//!   tsdb_tool dump <dir>                   print every sample of every block and the head, like `promtool tsdb dump`

use model::storage::{Queryable, Storage};
use model::{Labels, MatchOp, Matcher};
use tsdb::{Db, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::Path::new(args.get(2).ok_or("usage: tsdb_tool gen|dump <dir> ...")?);
    match args[1].as_str() {
        "gen" => {
            let series: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
            let hours: i64 = args.get(4).map_or(Ok(10), |s| s.parse())?;
            let db = Db::open_without_background(dir, Options::default())?;
            let ls: Vec<Labels> = (0..series)
                .map(|i| {
                    Labels::from_pairs(&[
                        ("__name__", format!("metric_{}", i % 7)),
                        ("instance", format!("host-{i}")),
                        ("job", "gen".to_string()),
                    ])
                })
                .collect();
            let mut refs = vec![0u64; series];
            let mut a = db.appender();
            let mut t = 0;
            while t < hours * 3_600_000 {
                for (i, l) in ls.iter().enumerate() {
                    let v = if t % 600_000 == 0 && i % 5 == 0 { model::STALE_NAN } else { (t / 15_000) as f64 + i as f64 * 0.25 };
                    refs[i] = a.append(refs[i], l, t, v)?;
                }
                a.commit()?;
                t += 15_000;
            }
            db.maintain()?;
            for b in db.blocks() {
                println!("{} {} {} series={} samples={}", b.ulid, b.min_time, b.max_time, b.stats.num_series, b.stats.num_samples);
            }
            db.close()?;
        }
        "dump" => {
            let db = Db::open_without_background(dir, Options { no_lockfile: true, ..Options::default() })?;
            let q = db.querier(i64::MIN, i64::MAX)?;
            for s in q.select(true, None, &[Matcher::new(MatchOp::Regex, "__name__", ".+")?])? {
                let mut s = s?;
                while let Some(x) = s.samples.next() {
                    println!("{} {} {}", s.labels, x.v, x.t);
                }
                if let Some(e) = s.samples.err() {
                    return Err(e.to_string().into());
                }
            }
        }
        other => return Err(format!("unknown command {other}").into()),
    }
    Ok(())
}
