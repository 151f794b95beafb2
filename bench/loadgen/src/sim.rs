//! The simulated workload: what series exist, what their labels look like and how their values move.
//!
//! A target is one scrape endpoint (think: a node agent exposing per-pod metrics, like cAdvisor). It holds
//! `groups` pods; each pod ("group") exposes exactly [`GROUP_SERIES`] series:
//!
//! | family | kind | series per group | extra labels |
//! | --- | --- | --- | --- |
//! | `bench_http_requests_total` | counter (integer) | 12 (one per status code) | method, route, code |
//! | `bench_http_request_duration_seconds` | classic histogram | 13 (11 `_bucket{le}`, `_count`, `_sum`) | method, route |
//! | `bench_container_cpu_usage_seconds_total` | counter (float) | 1 | |
//! | six gauges (bytes, threads, fds, queue depth, hit ratio, latency EWMA) | gauge | 6 | some: queue, cache, upstream |
//!
//! Every series also has `namespace`, `pod`, `container` (and `job`, `instance` from the scraper, or written
//! explicitly in datasets): about 9–10 labels and ~65 bytes of label values per series.
//!
//! Values are pure functions of (seed, target, group, generation, tick) through [`crate::rng`], so the live
//! server and the dataset writer agree on every value at the same absolute tick. Churn replaces a pod by a new
//! one (new `pod` label value → 32 new series, counters restarting at 0).

use crate::rng::{key, mix, normalish, range, unit};

/// Series per group (pod). Series counts per target are rounded up to a multiple of this.
pub const GROUP_SERIES: usize = 32;

/// Histogram bucket bounds (Prometheus client default buckets), as exposed in the `le` label.
pub const LE: [&str; 11] = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"];
const LE_F: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

const CODES: [&str; 12] = ["200", "201", "204", "301", "304", "400", "401", "403", "404", "429", "500", "503"];
/// Share of requests per status code (sums to 1).
const CODE_SHARE: [f64; 12] = [0.80, 0.05, 0.03, 0.005, 0.03, 0.02, 0.01, 0.005, 0.03, 0.005, 0.01, 0.005];

const APPS: [&str; 16] = [
    "checkout", "payments", "cart", "catalog", "search", "frontend", "auth", "inventory", "shipping", "recommender",
    "orders", "billing", "notifier", "gateway", "profile", "reviews",
];
const NAMESPACES: [&str; 8] = ["prod", "prod-eu", "prod-us", "staging", "shop", "platform", "data", "edge"];
const CONTAINERS: [&str; 4] = ["server", "worker", "api", "app"];
const ROUTES: [&str; 16] = [
    "/api/v1/orders", "/api/v1/orders/{id}", "/api/v2/cart/items", "/api/v1/users/{id}", "/api/v1/search",
    "/api/v1/products/{id}", "/api/v2/payments", "/api/v1/login", "/api/v1/inventory", "/api/v1/shipments/{id}",
    "/api/v2/recommendations", "/api/v1/invoices", "/healthz", "/api/v1/reviews", "/api/v1/profile", "/graphql",
];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const QUEUES: [&str; 4] = ["default", "email", "billing-events", "reindex"];
const CACHES: [&str; 3] = ["session", "catalog", "http"];
const UPSTREAMS: [&str; 4] = ["postgres", "redis", "inventory-svc", "payments-psp"];

/// Layout of one group's value array.
pub const H_FIRST: usize = 12; // first histogram series (le="0.005")
pub const H_COUNT: usize = 23;
pub const H_SUM: usize = 24;
pub const CPU: usize = 25;
pub const G_MEM: usize = 26;
pub const G_THREADS: usize = 27;
pub const G_FDS: usize = 28;
pub const G_QUEUE: usize = 29;
pub const G_HIT: usize = 30;
pub const G_EWMA: usize = 31;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric family and the slice of a group's series that belongs to it.
pub struct Family {
    /// OpenMetrics family name (counters without `_total`).
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub first: usize,
    pub len: usize,
}

impl Family {
    /// The name used in `# TYPE` lines of the 0.0.4 text format (counters keep `_total` there).
    pub fn text_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            _ => self.name.to_string(),
        }
    }
}

pub const FAMILIES: [Family; 9] = [
    Family { name: "bench_http_requests", kind: Kind::Counter, help: "HTTP requests served.", first: 0, len: 12 },
    Family {
        name: "bench_http_request_duration_seconds",
        kind: Kind::Histogram,
        help: "HTTP request latency.",
        first: H_FIRST,
        len: 13,
    },
    Family {
        name: "bench_container_cpu_usage_seconds",
        kind: Kind::Counter,
        help: "CPU time consumed.",
        first: CPU,
        len: 1,
    },
    Family {
        name: "bench_container_memory_working_set_bytes",
        kind: Kind::Gauge,
        help: "Working set size.",
        first: G_MEM,
        len: 1,
    },
    Family { name: "bench_container_threads", kind: Kind::Gauge, help: "Threads.", first: G_THREADS, len: 1 },
    Family { name: "bench_process_open_fds", kind: Kind::Gauge, help: "Open file descriptors.", first: G_FDS, len: 1 },
    Family { name: "bench_work_queue_depth", kind: Kind::Gauge, help: "Items waiting.", first: G_QUEUE, len: 1 },
    Family { name: "bench_cache_hit_ratio", kind: Kind::Gauge, help: "Cache hit ratio.", first: G_HIT, len: 1 },
    Family {
        name: "bench_upstream_latency_ewma_seconds",
        kind: Kind::Gauge,
        help: "Smoothed upstream latency.",
        first: G_EWMA,
        len: 1,
    },
];

/// Static description of the workload, shared by `serve` and `dataset`.
#[derive(Clone, Debug)]
pub struct Workload {
    pub seed: u64,
    pub targets: usize,
    pub groups_per_target: usize,
    /// Scrape / sample interval in seconds (ticks are absolute: tick = unix_seconds / interval).
    pub interval_s: u64,
    /// Churn: every `churn_every_s` seconds (absolute, aligned to the Unix epoch), each group is replaced with
    /// probability `churn_fraction`. 0 disables churn.
    pub churn_every_s: u64,
    pub churn_fraction: f64,
}

impl Workload {
    pub fn series_per_target(&self) -> usize {
        self.groups_per_target * GROUP_SERIES
    }

    pub fn total_series(&self) -> usize {
        self.targets * self.series_per_target()
    }

    fn churn_enabled(&self) -> bool {
        self.churn_every_s > 0 && self.churn_fraction > 0.0
    }

    /// Index of the churn period that contains `tick`.
    pub fn churn_epoch(&self, tick: u64) -> u64 {
        if !self.churn_enabled() {
            return 0;
        }
        tick * self.interval_s / self.churn_every_s
    }

    fn churn_hits(&self, t: usize, g: usize, epoch: u64) -> bool {
        unit(key(&[self.seed, 0xC4, t as u64, g as u64, epoch])) < self.churn_fraction
    }

    /// Generation of group (t, g) during churn epoch `epoch`: the latest epoch ≤ `epoch` whose churn event
    /// replaced this group (0 if none within a bounded look-back). Independent of when a process started, so
    /// the live server continues the series a dataset ended with.
    pub fn generation(&self, t: usize, g: usize, epoch: u64) -> u64 {
        if !self.churn_enabled() {
            return 0;
        }
        let lookback = ((20.0 / self.churn_fraction) as u64).clamp(1, 100_000);
        let mut e = epoch;
        while e > 0 && epoch - e < lookback {
            if self.churn_hits(t, g, e) {
                return e;
            }
            e -= 1;
        }
        0
    }

    /// True when group (t, g) is replaced at the first tick of `epoch`.
    pub fn churns_at(&self, t: usize, g: usize, epoch: u64) -> bool {
        self.churn_enabled() && self.churn_hits(t, g, epoch)
    }
}

/// Per-group constants, drawn once at the group's birth.
#[derive(Clone, Debug)]
struct Params {
    req_rate: f64,
    cdf: [f64; 10],
    mean_latency: f64,
    lat_median: f64,
    cpu_rate: f64,
    mem_base: f64,
}

/// One pod: labels (pre-rendered series prefixes) and current values.
#[derive(Clone, Debug)]
pub struct Group {
    key: u64,
    params: Params,
    pub values: [f64; GROUP_SERIES],
    /// `name{labels} ` for each of the 32 series, concatenated; `off[i]..off[i+1]` is series i.
    pub prefix: Vec<u8>,
    pub off: [u32; GROUP_SERIES + 1],
    /// Sum of label-value bytes and label count over the group's series (excluding `__name__`), for reports.
    pub label_value_bytes: usize,
    pub label_count: usize,
}

fn base36(mut v: u64, n: usize, out: &mut String) {
    const A: &[u8] = b"bcdfghjklmnpqrstvwxz2456789"; // Kubernetes' "safe" alphabet (no vowels, no 0/1/3)
    for _ in 0..n {
        out.push(A[(v % A.len() as u64) as usize] as char);
        v /= A.len() as u64;
    }
}

/// lognormal CDF at x for median m and shape sigma.
fn lognormal_cdf(x: f64, m: f64, sigma: f64) -> f64 {
    let z = (x.ln() - m.ln()) / (sigma * std::f64::consts::SQRT_2);
    0.5 * (1.0 + erf(z))
}

/// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), enough for bucket shares.
fn erf(x: f64) -> f64 {
    let s = x.signum();
    let x = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t + 0.254_829_592)
            * t
            * (-x * x).exp();
    s * y
}

#[inline]
fn stochastic_round(x: f64, u: f64) -> f64 {
    (x + u).floor()
}

/// Labels prepended to every series (dataset mode: `job`, `instance`; live mode: none, the scraper adds them).
pub type TargetLabels<'a> = &'a [(&'a str, &'a str)];

impl Group {
    /// Creates group `g` of target `t` in generation `gen` with zeroed counters.
    pub fn birth(w: &Workload, t: usize, g: usize, gen: u64, target_labels: TargetLabels) -> Group {
        let k = key(&[w.seed, t as u64, g as u64, gen]);
        let lat_median = 10f64.powf(range(k ^ 3, -2.3, -0.7));
        let sigma = range(k ^ 4, 0.5, 1.1);
        let mut cdf = [0.0; 10];
        for (c, le) in cdf.iter_mut().zip(LE_F) {
            *c = lognormal_cdf(le, lat_median, sigma);
        }
        let params = Params {
            req_rate: 10f64.powf(range(k ^ 2, -1.0, 2.3)),
            cdf,
            mean_latency: lat_median * (sigma * sigma / 2.0).exp(),
            lat_median,
            cpu_rate: 10f64.powf(range(k ^ 5, -2.5, 0.3)),
            mem_base: (2f64.powf(range(k ^ 6, 24.0, 32.0)) / 4096.0).round() * 4096.0,
        };
        let mut values = [0.0; GROUP_SERIES];
        values[G_MEM] = params.mem_base;
        values[G_THREADS] = (8.0 + range(k ^ 7, 0.0, 248.0)).floor();
        values[G_FDS] = (16.0 + range(k ^ 8, 0.0, 2000.0)).floor();
        values[G_QUEUE] = 0.0;
        values[G_HIT] = (range(k ^ 9, 0.6, 0.99) * 1e4).round() / 1e4;
        values[G_EWMA] = (lat_median * 1e6).round() / 1e6;

        // Labels.
        let app = APPS[(mix(k ^ 10) % APPS.len() as u64) as usize];
        let ns = NAMESPACES[(mix(key(&[w.seed, 0xA5, t as u64, g as u64])) % NAMESPACES.len() as u64) as usize];
        let container = CONTAINERS[(mix(k ^ 11) % CONTAINERS.len() as u64) as usize];
        let mut pod = String::with_capacity(32);
        pod.push_str(app);
        pod.push('-');
        base36(mix(k ^ 12), 9, &mut pod);
        pod.push('-');
        base36(mix(k ^ 13), 5, &mut pod);
        let route = ROUTES[(mix(k ^ 14) % ROUTES.len() as u64) as usize];
        let m = unit(k ^ 15);
        let method = METHODS[if m < 0.6 { 0 } else if m < 0.85 { 1 } else if m < 0.95 { 2 } else { 3 }];
        let queue = QUEUES[(mix(k ^ 16) % QUEUES.len() as u64) as usize];
        let cache = CACHES[(mix(k ^ 17) % CACHES.len() as u64) as usize];
        let upstream = UPSTREAMS[(mix(k ^ 18) % UPSTREAMS.len() as u64) as usize];

        let mut grp = Group {
            key: k,
            params,
            values,
            prefix: Vec::with_capacity(GROUP_SERIES * 140),
            off: [0; GROUP_SERIES + 1],
            label_value_bytes: 0,
            label_count: 0,
        };
        let common: [(&str, &str); 3] = [("namespace", ns), ("pod", &pod), ("container", container)];
        for s in 0..GROUP_SERIES {
            grp.off[s] = grp.prefix.len() as u32;
            let mut extra: [(&str, &str); 3] = [("", ""); 3];
            let mut n_extra = 0;
            let (name, suffix): (&str, &str) = match s {
                0..=11 => {
                    extra = [("method", method), ("route", route), ("code", CODES[s])];
                    n_extra = 3;
                    ("bench_http_requests", "_total")
                }
                H_FIRST..=22 => {
                    extra = [("method", method), ("route", route), ("le", LE[s - H_FIRST])];
                    n_extra = 3;
                    ("bench_http_request_duration_seconds", "_bucket")
                }
                H_COUNT | H_SUM => {
                    extra[0] = ("method", method);
                    extra[1] = ("route", route);
                    n_extra = 2;
                    ("bench_http_request_duration_seconds", if s == H_COUNT { "_count" } else { "_sum" })
                }
                CPU => ("bench_container_cpu_usage_seconds", "_total"),
                G_MEM => ("bench_container_memory_working_set_bytes", ""),
                G_THREADS => ("bench_container_threads", ""),
                G_FDS => ("bench_process_open_fds", ""),
                G_QUEUE => {
                    extra[0] = ("queue", queue);
                    n_extra = 1;
                    ("bench_work_queue_depth", "")
                }
                G_HIT => {
                    extra[0] = ("cache", cache);
                    n_extra = 1;
                    ("bench_cache_hit_ratio", "")
                }
                _ => {
                    extra[0] = ("upstream", upstream);
                    n_extra = 1;
                    ("bench_upstream_latency_ewma_seconds", "")
                }
            };
            let p = &mut grp.prefix;
            p.extend_from_slice(name.as_bytes());
            p.extend_from_slice(suffix.as_bytes());
            p.push(b'{');
            let mut first = true;
            for (n, v) in target_labels.iter().chain(common.iter()).chain(extra[..n_extra].iter()) {
                if !first {
                    p.push(b',');
                }
                first = false;
                p.extend_from_slice(n.as_bytes());
                p.extend_from_slice(b"=\"");
                p.extend_from_slice(v.as_bytes());
                p.push(b'"');
                grp.label_value_bytes += v.len();
                grp.label_count += 1;
            }
            p.extend_from_slice(b"} ");
        }
        grp.off[GROUP_SERIES] = grp.prefix.len() as u32;
        grp
    }

    #[inline]
    pub fn series_prefix(&self, s: usize) -> &[u8] {
        &self.prefix[self.off[s] as usize..self.off[s + 1] as usize]
    }

    /// Advances all 32 values by one tick (`tick` is absolute, `dt` the interval in seconds).
    pub fn step(&mut self, tick: u64, dt: f64) {
        let p = &self.params;
        let v = &mut self.values;
        let tk = mix(self.key ^ tick.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Requests this tick: a diurnal-free but bursty rate.
        let n_req = p.req_rate * dt * range(tk ^ 1, 0.6, 1.4);
        for i in 0..12 {
            let x = n_req * CODE_SHARE[i] * range(tk ^ (16 + i as u64), 0.8, 1.2);
            v[i] += stochastic_round(x, unit(tk ^ (48 + i as u64)));
        }
        // Histogram: expected bucket shares of a lognormal latency distribution; cumulative by construction.
        let n_obs = stochastic_round(n_req, unit(tk ^ 2));
        if n_obs > 0.0 {
            for j in 0..10 {
                v[H_FIRST + j] += (n_obs * p.cdf[j] + 0.5).floor();
            }
            v[H_FIRST + 10] += n_obs;
            v[H_COUNT] += n_obs;
            v[H_SUM] += n_obs * p.mean_latency * range(tk ^ 3, 0.85, 1.15);
        }
        v[CPU] += p.cpu_rate * dt * range(tk ^ 4, 0.5, 1.5);
        // Gauges: random walks at the precision real exporters report.
        let mem = v[G_MEM] + 4096.0 * (normalish(tk ^ 5) * 64.0).round();
        v[G_MEM] = mem.clamp((p.mem_base / 4.0).max(4096.0), p.mem_base * 4.0);
        if unit(tk ^ 6) < 0.15 {
            v[G_THREADS] = (v[G_THREADS] + if unit(tk ^ 7) < 0.5 { -1.0 } else { 1.0 }).max(1.0);
        }
        v[G_FDS] = (v[G_FDS] + (normalish(tk ^ 8) * 2.0).round()).max(3.0);
        v[G_QUEUE] = if unit(tk ^ 9) < 0.7 { 0.0 } else { range(tk ^ 10, 0.0, 4.0).exp().floor() };
        v[G_HIT] = ((v[G_HIT] + normalish(tk ^ 11) * 0.005).clamp(0.0, 1.0) * 1e4).round() / 1e4;
        let lat = p.lat_median * range(tk ^ 12, 0.5, 2.0);
        v[G_EWMA] = ((0.8 * v[G_EWMA] + 0.2 * lat) * 1e6).round() / 1e6;
    }
}

/// Writes `v` in the exposition formats' float syntax: integers without a fraction, others in shortest
/// round-trip form.
#[inline]
pub fn write_value(buf: &mut Vec<u8>, v: f64) {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        write_int(buf, v as i64);
    } else if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else {
        use std::io::Write;
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "{v}");
    }
}

#[inline]
pub fn write_int(buf: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Workload {
        Workload {
            seed: 1,
            targets: 2,
            groups_per_target: 4,
            interval_s: 15,
            churn_every_s: 600,
            churn_fraction: 0.1,
        }
    }

    #[test]
    fn histogram_stays_cumulative_and_counters_monotone() {
        let w = w();
        let mut g = Group::birth(&w, 0, 3, 0, &[]);
        let mut prev = g.values;
        for tick in 1000..1500 {
            g.step(tick, 15.0);
            let v = g.values;
            for j in 0..10 {
                assert!(v[H_FIRST + j] <= v[H_FIRST + j + 1], "bucket {j} > next at tick {tick}");
            }
            assert_eq!(v[H_FIRST + 10], v[H_COUNT]);
            for i in (0..=H_SUM).chain([CPU]) {
                assert!(v[i] >= prev[i], "series {i} decreased");
            }
            assert!((0.0..=1.0).contains(&v[G_HIT]));
            prev = v;
        }
        assert!(g.values[H_COUNT] > 0.0);
    }

    #[test]
    fn values_are_deterministic_per_tick() {
        let w = w();
        let mut a = Group::birth(&w, 1, 2, 7, &[]);
        let mut b = Group::birth(&w, 1, 2, 7, &[]);
        for t in 0..50 {
            a.step(t, 15.0);
        }
        for t in 0..50 {
            b.step(t, 15.0);
        }
        assert_eq!(a.values, b.values);
        assert_eq!(a.prefix, b.prefix);
    }

    #[test]
    fn series_in_a_target_are_unique() {
        let w = Workload { groups_per_target: 500, ..w() };
        let mut seen = std::collections::HashSet::new();
        for g in 0..w.groups_per_target {
            let grp = Group::birth(&w, 0, g, w.generation(0, g, 5000), &[]);
            for s in 0..GROUP_SERIES {
                assert!(seen.insert(grp.series_prefix(s).to_vec()), "duplicate series");
            }
        }
        assert_eq!(seen.len(), w.series_per_target());
    }

    #[test]
    fn generation_is_last_hitting_epoch() {
        let w = w();
        for g in 0..20 {
            let e = 123_456;
            let gen = w.generation(0, g, e);
            if gen > 0 {
                assert!(w.churns_at(0, g, gen));
                for x in gen + 1..=e {
                    assert!(!w.churns_at(0, g, x));
                }
            }
        }
    }

    #[test]
    fn value_formatting() {
        let mut b = Vec::new();
        for v in [0.0, 12.0, -3.0, 0.25, 1.5e9, f64::NAN] {
            write_value(&mut b, v);
            b.push(b' ');
        }
        assert_eq!(String::from_utf8(b).unwrap(), "0 12 -3 0.25 1500000000 NaN ");
    }

    #[test]
    fn label_shape_is_realistic() {
        let w = w();
        let tl: [(&str, &str); 2] = [("job", "bench"), ("instance", "loadgen-17")];
        let g = Group::birth(&w, 0, 0, 0, &tl);
        let avg_bytes = g.label_value_bytes as f64 / GROUP_SERIES as f64;
        let avg_labels = g.label_count as f64 / GROUP_SERIES as f64 + 1.0; // + __name__
        assert!((45.0..90.0).contains(&avg_bytes), "{avg_bytes}");
        assert!((7.0..11.0).contains(&avg_labels), "{avg_labels}");
    }
}
