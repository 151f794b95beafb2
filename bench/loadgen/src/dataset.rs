//! Historical dataset writer: the same series and value model as the live server, over a past time range,
//! with explicit timestamps.
//!
//! Output is OpenMetrics text (`--ts-unit s`, for `promtool tsdb create-blocks-from openmetrics` and ignis's
//! backfill): families are contiguous (`# TYPE` first), each series' samples are contiguous and in time order,
//! histogram points group `_bucket`, `_count`, `_sum` per timestamp, and the file ends with `# EOF`. With
//! `--ts-unit ms` the identical lines carry millisecond timestamps, which is what VictoriaMetrics'
//! `/api/v1/import/prometheus` (Prometheus text format) expects; everything else is byte-identical.

use crate::sim::{write_int, write_value, Group, Kind, Workload, FAMILIES, GROUP_SERIES};
use std::io::{self, Write};

pub struct DatasetArgs {
    pub start_tick: u64,
    pub end_tick: u64,
    pub ts_ms: bool,
    pub job: String,
    pub instance_prefix: String,
}

#[derive(Default, Debug)]
pub struct DatasetStats {
    pub samples: u64,
    pub series: u64,
    pub bytes: u64,
}

struct CountingWriter<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(b)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn write_dataset<W: Write>(w: &Workload, a: &DatasetArgs, out: W) -> io::Result<DatasetStats> {
    let mut out = CountingWriter { inner: io::BufWriter::with_capacity(1 << 20, out), bytes: 0 };
    let mut stats = DatasetStats::default();
    let dt = w.interval_s as f64;
    let mut line = Vec::with_capacity(1 << 16);
    // Values of one family of one group over one generation: vals[(tick - seg_start) * len + s].
    let mut vals: Vec<f64> = Vec::new();
    for fam in FAMILIES.iter() {
        line.clear();
        line.extend_from_slice(format!("# HELP {} {}\n# TYPE {} {}\n", fam.name, fam.help, fam.name, fam.kind.as_str()).as_bytes());
        out.write_all(&line)?;
        for t in 0..w.targets {
            let instance = format!("{}{}", a.instance_prefix, t);
            let tl: [(&str, &str); 2] = [("job", &a.job), ("instance", &instance)];
            for g in 0..w.groups_per_target {
                let mut epoch = w.churn_epoch(a.start_tick);
                let mut grp = Group::birth(w, t, g, w.generation(t, g, epoch), &tl);
                let mut seg_start = a.start_tick;
                vals.clear();
                for tick in a.start_tick..a.end_tick {
                    let e = w.churn_epoch(tick);
                    if e != epoch {
                        let newgen = (epoch + 1..=e).rev().find(|&x| w.churns_at(t, g, x));
                        epoch = e;
                        if let Some(gen) = newgen {
                            emit(&mut out, &mut line, &grp, fam.first, fam.len, fam.kind, seg_start, &vals, w, a, &mut stats)?;
                            grp = Group::birth(w, t, g, gen, &tl);
                            seg_start = tick;
                            vals.clear();
                        }
                    }
                    grp.step(tick, dt);
                    vals.extend_from_slice(&grp.values[fam.first..fam.first + fam.len]);
                }
                emit(&mut out, &mut line, &grp, fam.first, fam.len, fam.kind, seg_start, &vals, w, a, &mut stats)?;
            }
        }
    }
    out.write_all(b"# EOF\n")?;
    out.flush()?;
    stats.bytes = out.bytes;
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
fn emit<W: Write>(
    out: &mut W,
    line: &mut Vec<u8>,
    grp: &Group,
    first: usize,
    len: usize,
    kind: Kind,
    seg_start: u64,
    vals: &[f64],
    w: &Workload,
    a: &DatasetArgs,
    stats: &mut DatasetStats,
) -> io::Result<()> {
    debug_assert!(first + len <= GROUP_SERIES);
    let points = vals.len() / len;
    if points == 0 {
        return Ok(());
    }
    let put = |line: &mut Vec<u8>, s: usize, i: usize| {
        line.extend_from_slice(grp.series_prefix(first + s));
        write_value(line, vals[i * len + s]);
        line.push(b' ');
        let ts = (seg_start + i as u64) * w.interval_s;
        write_int(line, ts as i64);
        if a.ts_ms {
            line.extend_from_slice(b"000");
        }
        line.push(b'\n');
    };
    line.clear();
    if kind == Kind::Histogram {
        // One OpenMetrics histogram point = all buckets, count and sum at one timestamp.
        for i in 0..points {
            for s in 0..len {
                put(line, s, i);
            }
            if line.len() > 60_000 {
                out.write_all(line)?;
                line.clear();
            }
        }
    } else {
        for s in 0..len {
            for i in 0..points {
                put(line, s, i);
                if line.len() > 60_000 {
                    out.write_all(line)?;
                    line.clear();
                }
            }
        }
    }
    out.write_all(line)?;
    line.clear();
    stats.samples += (points * len) as u64;
    stats.series += len as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(ms: bool) -> DatasetArgs {
        DatasetArgs { start_tick: 1000, end_tick: 1040, ts_ms: ms, job: "bench".into(), instance_prefix: "loadgen-".into() }
    }

    #[test]
    fn openmetrics_shape() {
        let w = Workload { seed: 3, targets: 2, groups_per_target: 2, interval_s: 15, churn_every_s: 0, churn_fraction: 0.0 };
        let mut buf = Vec::new();
        let st = write_dataset(&w, &args(false), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(st.samples, 40 * w.total_series() as u64);
        assert_eq!(st.series, w.total_series() as u64);
        // Families are contiguous: each TYPE appears once, and no sample of a family appears after another TYPE.
        let mut fam_of_line = Vec::new();
        let mut cur = String::new();
        for l in text.lines() {
            if let Some(r) = l.strip_prefix("# TYPE ") {
                cur = r.split(' ').next().unwrap().to_string();
            } else if !l.starts_with('#') {
                assert!(l.starts_with(&cur), "{l} outside family {cur}");
                fam_of_line.push(cur.clone());
                let ts: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
                assert!((15_000..15_600).contains(&ts));
            }
        }
        assert_eq!(fam_of_line.len() as u64, st.samples);
    }

    #[test]
    fn ms_variant_differs_only_in_timestamps() {
        let w = Workload { seed: 3, targets: 1, groups_per_target: 1, interval_s: 15, churn_every_s: 0, churn_fraction: 0.0 };
        let mut s = Vec::new();
        let mut m = Vec::new();
        write_dataset(&w, &args(false), &mut s).unwrap();
        write_dataset(&w, &args(true), &mut m).unwrap();
        let s = String::from_utf8(s).unwrap();
        let m = String::from_utf8(m).unwrap();
        for (a, b) in s.lines().zip(m.lines()) {
            if a.starts_with('#') {
                assert_eq!(a, b);
            } else {
                assert_eq!(format!("{a}000"), b);
            }
        }
    }

    #[test]
    fn churn_creates_new_series_without_overlap() {
        let w = Workload { seed: 5, targets: 1, groups_per_target: 8, interval_s: 15, churn_every_s: 150, churn_fraction: 0.5 };
        let mut buf = Vec::new();
        let st = write_dataset(&w, &args(false), &mut buf).unwrap();
        // Samples are conserved (each tick every group exposes exactly 32 series), series grow with churn.
        assert_eq!(st.samples, 40 * w.total_series() as u64);
        assert!(st.series > w.total_series() as u64);
        // Per series, timestamps strictly increase.
        let text = String::from_utf8(buf).unwrap();
        let mut last = std::collections::HashMap::new();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, rest) = l.rsplit_once("} ").unwrap();
            let ts: u64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
            if let Some(p) = last.insert(series.to_string(), ts) {
                assert!(ts > p, "{series}: {ts} after {p}");
            }
        }
    }
}
