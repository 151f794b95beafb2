#!/usr/bin/env python3
"""Side-by-side benchmark: ignis vs Prometheus 2.42 vs VictoriaMetrics 1.79 on the same load.

    bench/run.py --scale 1k --duration 60s        # smoke, ~2-3 minutes
    bench/run.py --scale 100k                     # ~25 minutes
    bench/run.py --scale 1m                       # needs ~20 GB RAM free and an otherwise idle machine

Python 3.11 standard library only. See bench/README.md for what is measured and how.

Phases (all systems see identical data; the generator is deterministic):
  1. build bench/loadgen (standalone cargo project) unless --loadgen is given;
  2. dataset: 24 h at the scrape interval for the first D series of the live workload (same labels, so live
     scraping continues their history), written as OpenMetrics (seconds) for promtool / ignis backfill and
     streamed with millisecond timestamps into VictoriaMetrics' /api/v1/import/prometheus;
  3. live: loadgen serves N targets x M series on one port (/metrics/<i>); each system scrapes all of them
     every interval (scrape configs differ only in a `sys` URL parameter used for accounting);
  4. after a warm-up, CPU, RSS, served samples and disk are sampled at the start and end of a window;
  5. dashboard queries are run against each system in turn (median / p90 over --reps runs, after one warm-up);
  6. one table is printed (and written to bench/README.md with --update-readme).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# scale -> (targets, series per target, dataset targets, default live duration s, query reps)
SCALES = {
    "1k": (4, 256, 1, 60, 5),
    "100k": (100, 1024, 10, 600, 10),
    # Issue 3's scrape load: 200k series from 100 targets (the dataset's 5 targets hold 10,240 series as above).
    "200k": (100, 2048, 5, 600, 10),
    "1m": (1000, 1024, 10, 1200, 10),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def parse_duration(s: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {s!r} (use 60s, 10m, 2h)")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        return 0, str(e).encode()


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        code, _ = http_get(url, timeout=5)
        if code == 200:
            return True
        time.sleep(0.5)
    return False


def du_bytes(path: str) -> int:
    """Disk usage like `du -s --block-size=1` (allocated blocks, not apparent size)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            try:
                total += os.lstat(os.path.join(root, n)).st_blocks * 512
            except OSError:
                pass
    return total


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        # The command name may contain spaces; fields after the closing paren are fixed.
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def scrape_metric(base: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """Sum of a metric's samples (matching `labels`) on a system's own /metrics page."""
    code, body = http_get(base + "/metrics", timeout=30)
    if code != 200:
        return None
    total, found = 0.0, False
    for line in body.decode(errors="replace").splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        if labels:
            lbl = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            if any(lbl.get(k) != v for k, v in labels.items()):
                continue
        try:
            total += float(m.group(3))
            found = True
        except ValueError:
            pass
    return total if found else None


# --------------------------------------------------------------------------------------------------------------
# Systems


@dataclass
class System:
    name: str
    port: int
    data: str
    workdir: str
    proc: subprocess.Popen | None = None
    notes: list[str] = field(default_factory=list)
    backfill: dict = field(default_factory=dict)
    window: dict = field(default_factory=dict)
    queries: dict = field(default_factory=dict)
    answers: dict = field(default_factory=dict)  # query name -> result_points() of the warm-up run

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logfile(self, what: str):
        return open(os.path.join(self.workdir, f"{self.name}.{what}.log"), "ab")

    def popen(self, argv: list[str]) -> subprocess.Popen:
        log(f"{self.name}: {' '.join(argv)}")
        out = self.logfile("out")
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def stop(self) -> None:
        p = self.proc
        if p is None or p.poll() is not None:
            self.proc = None
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        self.proc = None

    # Overridden per system.
    def start(self, scrape_config: str | None) -> bool:
        raise NotImplementedError

    def ready_path(self) -> str:
        return "/-/ready"

    def active_series(self) -> float | None:
        return scrape_metric(self.base, "prometheus_tsdb_head_series")


class Prometheus(System):
    BIN = "/usr/bin/prometheus"

    def start(self, scrape_config: str | None) -> bool:
        argv = [self.BIN, f"--config.file={scrape_config}", f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.data}", "--storage.tsdb.retention.time=30d", "--log.level=warn"]
        self.proc = self.popen(argv)
        return wait_http(self.base + self.ready_path(), 300, self.proc)


class Ignis(System):
    def __init__(self, *a, binary: str, **kw):
        super().__init__(*a, **kw)
        self.binary = binary

    def start(self, scrape_config: str | None) -> bool:
        # Same retention as Prometheus (the backfill is 24 h old; neither default would drop it, but keep them
        # equal). Log level stays at info: ignis logs only block writes/compactions/retention there, which is
        # what a reader of ignis.out.log needs when something goes wrong.
        argv = [self.binary, "server", f"--config.file={scrape_config}",
                f"--web.listen-address=127.0.0.1:{self.port}", f"--storage.tsdb.path={self.data}",
                "--storage.tsdb.retention.time=30d"]
        self.proc = self.popen(argv)
        return wait_http(self.base + self.ready_path(), 300, self.proc)

    def backfill_supported(self) -> bool:
        r = subprocess.run([self.binary, "tsdb", "create-blocks-from", "openmetrics", "--help"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return r.returncode == 0


class Victoria(System):
    BIN = "/usr/bin/victoria-metrics"

    def start(self, scrape_config: str | None) -> bool:
        argv = [self.BIN, f"-storageDataPath={self.data}", f"-httpListenAddr=127.0.0.1:{self.port}",
                "-retentionPeriod=10y", "-search.disableCache", "-search.maxUniqueTimeseries=50000000",
                "-search.maxQueryDuration=300s", "-loggerLevel=WARN", "-promscrape.suppressScrapeErrors"]
        if scrape_config:
            argv.append(f"-promscrape.config={scrape_config}")
        self.proc = self.popen(argv)
        return wait_http(self.base + self.ready_path(), 300, self.proc)

    def ready_path(self) -> str:
        return "/health"

    def active_series(self) -> float | None:
        return scrape_metric(self.base, "vm_cache_entries", {"type": "storage/hour_metric_ids"})

    def stop(self) -> None:
        # SIGINT is VictoriaMetrics' graceful shutdown (flushes in-memory parts).
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                pass
        super().stop()


# --------------------------------------------------------------------------------------------------------------
# Queries


def dashboard_queries(now: float, interval: int) -> list[tuple[str, str, dict]]:
    """(name, path, params). Instant queries run at `now`; range queries cover the 24 h dataset at 60 s step."""
    day = now - 86400
    rng = {"start": f"{day:.0f}", "end": f"{now:.0f}", "step": "60"}
    inst = {"time": f"{now:.0f}"}
    w = f"[{max(4 * interval, 60)}s]"
    return [
        ("rate_sum_by", "/api/v1/query",
         {"query": f"sum by (namespace) (rate(bench_http_requests_total{w}))", **inst}),
        ("error_ratio", "/api/v1/query",
         {"query": f'sum by (route) (rate(bench_http_requests_total{{code=~"5.."}}{w})) / '
                   f"sum by (route) (rate(bench_http_requests_total{w}))", **inst}),
        ("histogram_quantile", "/api/v1/query",
         {"query": "histogram_quantile(0.99, sum by (le, namespace) "
                   f"(rate(bench_http_request_duration_seconds_bucket{w})))", **inst}),
        ("topk_count_by_name", "/api/v1/query",
         {"query": 'topk(10, count by (__name__) ({job="bench"}))', **inst}),
        ("regex_matchers", "/api/v1/query",
         {"query": 'sum by (code) (rate(bench_http_requests_total{route=~"/api/v1/orders.*",code=~"4..|5.."}'
                   f"{w}))", **inst}),
        ("topk_gauge", "/api/v1/query",
         {"query": "topk(5, max by (pod) (bench_container_memory_working_set_bytes))", **inst}),
        # Select + full decode of the dataset's targets over 2 h (backfilled blocks and the live head), summed so
        # the answer stays one number (the samples read). count_over_time drops the metric name, so the four
        # families whose remaining label sets would collide are left out (Prometheus refuses duplicate label
        # sets; the scrapers' own up/scrape_* series are left out for the same reason): 28 of each pod's 32 series,
        # 8,960 series in all.
        ("select_9k_2h", "/api/v1/query",
         {"query": 'sum(count_over_time({job="bench",instance=~"loadgen-[0-9]",__name__=~"bench_.+",__name__!~'
                   '"bench_http_request_duration_seconds_sum|bench_container_memory_working_set_bytes|'
                   'bench_container_threads|bench_process_open_fds"}[2h]))', **inst}),
        ("range24h_rate_sum_by", "/api/v1/query_range",
         {"query": f"sum by (namespace) (rate(bench_http_requests_total{w}))", **rng}),
        ("range24h_histogram_quantile", "/api/v1/query_range",
         {"query": "histogram_quantile(0.9, sum by (le) "
                   f"(rate(bench_http_request_duration_seconds_bucket{w})))", **rng}),
        ("range24h_regex", "/api/v1/query_range",
         {"query": 'sum by (namespace) (rate(bench_http_requests_total{namespace=~"prod.*",code!~"2.."}'
                   f"{w}))", **rng}),
        ("label_names", "/api/v1/labels", {"start": f"{day:.0f}", "end": f"{now:.0f}"}),
        ("label_values_pod", "/api/v1/label/pod/values", {"start": f"{day:.0f}", "end": f"{now:.0f}"}),
        ("label_values_matched", "/api/v1/label/route/values",
         {"match[]": 'bench_http_requests_total{namespace="prod"}', "start": f"{now - 3600:.0f}",
          "end": f"{now:.0f}"}),
        ("series_lookup", "/api/v1/series",
         {"match[]": 'bench_container_threads{namespace="prod"}', "start": f"{now - 3600:.0f}",
          "end": f"{now:.0f}"}),
    ]


def result_size(body: bytes) -> int | None:
    try:
        j = json.loads(body)
    except ValueError:
        return None
    if j.get("status") != "success":
        return None
    d = j.get("data")
    if isinstance(d, dict):
        return len(d.get("result", []))
    if isinstance(d, list):
        return len(d)
    return None


def result_points(body: bytes) -> dict | None:
    """The answer in a comparable shape: {series key: {t: value}} for vectors/matrices/scalars, or
    {item: {0: 1.0}} for label names/values and series lists (set membership)."""
    try:
        d = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        return None
    out: dict = {}
    if isinstance(d, list):  # labels, label values, series
        for x in d:
            key = tuple(sorted(x.items())) if isinstance(x, dict) else x
            out[key] = {0: 1.0}
        return out
    rtype, res = d.get("resultType"), d.get("result")
    if rtype == "scalar":
        return {(): {float(res[0]): float(res[1])}}
    for r in res or []:
        key = tuple(sorted(r.get("metric", {}).items()))
        pts = r.get("values") or ([r["value"]] if "value" in r else [])
        out[key] = {float(t): float(v) for t, v in pts}
    return out


def compare_answers(ref: dict, got: dict) -> dict:
    """How far `got` is from `ref`: series only in one of them, points at common timestamps, how many are
    equal (relative difference <= 1e-9, NaN == NaN) and the median / max relative difference."""
    common = ref.keys() & got.keys()
    diffs, equal, only_ref_pts, only_got_pts = [], 0, 0, 0
    for k in common:
        a, b = ref[k], got[k]
        only_ref_pts += len(a.keys() - b.keys())
        only_got_pts += len(b.keys() - a.keys())
        for t in a.keys() & b.keys():
            x, y = a[t], b[t]
            if math.isnan(x) or math.isnan(y):
                d = 0.0 if math.isnan(x) and math.isnan(y) else math.inf
            elif x == y:
                d = 0.0
            else:
                d = abs(x - y) / max(abs(x), abs(y))
            diffs.append(d)
            equal += d <= 1e-9
    return {
        "series_only_ref": len(ref.keys() - got.keys()),
        "series_only_got": len(got.keys() - ref.keys()),
        "points": len(diffs),
        "points_equal": equal,
        "points_only_ref": only_ref_pts,
        "points_only_got": only_got_pts,
        "median_rel_diff": statistics.median(diffs) if diffs else None,
        "max_rel_diff": max(diffs) if diffs else None,
    }


class KeepAlive:
    """One persistent HTTP/1.1 connection, as Grafana and other API clients keep: timing a new connection and
    urllib's setup per request added ~0.3 ms to every call, more than a sub-millisecond metadata answer takes."""

    def __init__(self, base: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.conn = u.hostname, u.port, None

    def get(self, path: str, timeout: float) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, str(e).encode()
        return 0, b""


def run_queries(sys_: System, queries, reps: int) -> None:
    client = KeepAlive(sys_.base)
    for name, path, params in queries:
        url = path + "?" + urllib.parse.urlencode({**params, "nocache": "1"})
        times, size, err = [], None, None
        runs = reps
        i = 0
        while i <= runs:
            t0 = time.perf_counter()
            code, body = client.get(url, timeout=600)
            dt = time.perf_counter() - t0
            if i == 0:
                # Cheap calls get more timed runs (about a second's worth, at most 200): a median of 10
                # sub-millisecond calls on a machine that is scraping is mostly noise.
                runs = max(reps, min(200, int(1.0 / max(dt, 1e-4))))
            n = result_size(body) if code == 200 else None
            if n is None:
                err = f"HTTP {code}: {body[:200].decode(errors='replace')}"
                break
            size = n
            if i == 0:
                sys_.answers[name] = result_points(body)
            if i > 0:  # the first run warms caches, as a dashboard refresh would find them
                times.append(dt)
            i += 1
        sys_.queries[name] = {
            "median_ms": statistics.median(times) * 1000 if times else None,
            "p90_ms": percentile(times, 0.9) * 1000 if times else None,
            "series": size,
            "runs": len(times),
            "error": err,
        }
        if err:
            sys_.notes.append(f"query {name} failed: {err}")
            log(f"{sys_.name}: {name}: {err}")
        else:
            q = sys_.queries[name]
            log(f"{sys_.name}: {name}: median {q['median_ms']:.1f} ms, p90 {q['p90_ms']:.1f} ms, {size} series")


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --------------------------------------------------------------------------------------------------------------
# Main flow


def build_loadgen() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", "/work/target-bench")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    log("building bench/loadgen (release)")
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                    os.path.join(BENCH_DIR, "loadgen", "Cargo.toml")], check=True, env=env)
    return os.path.join(target, "release", "loadgen")


def scrape_config(path: str, sys_name: str, port: int, targets: int, interval: int) -> str:
    lines = ["global:", f"  scrape_interval: {interval}s", f"  scrape_timeout: {max(interval - 5, 5)}s",
             "scrape_configs:", "  - job_name: bench", "    params:", f"      sys: [{sys_name}]",
             "    static_configs:"]
    for i in range(targets):
        lines += [f"      - targets: ['127.0.0.1:{port}']",
                  f"        labels: {{__metrics_path__: '/metrics/{i}', instance: 'loadgen-{i}'}}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_dataset(loadgen: str, wl: list[str], end: int, hours: int, unit: str, out: str) -> dict:
    r = subprocess.run([loadgen, "dataset", *wl, f"--end={end}", f"--hours={hours}", f"--ts-unit={unit}",
                        f"--out={out}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return json.loads(r.stderr.decode().strip().splitlines()[-1])


def import_victoria(vm: Victoria, loadgen: str, wl: list[str], end: int, hours: int) -> dict:
    """Streams the dataset (millisecond timestamps) into /api/v1/import/prometheus without a temp file."""
    gen = subprocess.Popen([loadgen, "dataset", *wl, f"--end={end}", f"--hours={hours}", "--ts-unit=ms",
                            "--out=-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conn = http.client.HTTPConnection("127.0.0.1", vm.port, timeout=3600, blocksize=1 << 20)
    conn.request("POST", "/api/v1/import/prometheus", body=gen.stdout, encode_chunked=True,
                 headers={"Content-Type": "text/plain"})
    resp = conn.getresponse()
    body = resp.read()
    gen.wait()
    if resp.status // 100 != 2:
        raise RuntimeError(f"VictoriaMetrics import failed: HTTP {resp.status} {body[:300]!r}")
    return json.loads(gen.stderr.read().decode().strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=sorted(SCALES), default="1k")
    ap.add_argument("--duration", type=parse_duration, help="live measurement window (default per scale)")
    ap.add_argument("--warmup", type=parse_duration, default=None, help="live warm-up before the window")
    ap.add_argument("--interval", type=parse_duration, default=15, help="scrape and dataset interval")
    ap.add_argument("--systems", default="ignis,prometheus,victoriametrics")
    ap.add_argument("--dataset-series", type=int, help="series in the 24 h dataset (whole targets)")
    ap.add_argument("--dataset-hours", type=int, default=24)
    ap.add_argument("--churn-every", type=parse_duration, default=0)
    ap.add_argument("--churn-fraction", type=float, default=0.0)
    ap.add_argument("--reps", type=int, help="timed runs per query (after one warm-up run)")
    ap.add_argument("--ignis-bin", default=os.path.join(REPO, "target", "release", "ignis"))
    ap.add_argument("--loadgen", help="prebuilt loadgen binary (default: build bench/loadgen)")
    ap.add_argument("--workdir", help="keep data and logs here (default: a temp dir, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="do not delete the work dir")
    ap.add_argument("--update-readme", action="store_true", help="write the table into bench/README.md")
    args = ap.parse_args()

    targets, spt, ds_targets, dflt_dur, dflt_reps = SCALES[args.scale]
    duration = args.duration or dflt_dur
    reps = max(1, args.reps or dflt_reps)
    interval = args.interval
    warmup = args.warmup if args.warmup is not None else 2 * interval + 5
    if args.dataset_series:
        ds_targets = max(1, min(targets, math.ceil(args.dataset_series / spt)))
    wanted = [s.strip() for s in args.systems.split(",") if s.strip()]

    loadgen = args.loadgen or build_loadgen()
    workdir = args.workdir or tempfile.mkdtemp(prefix=f"ignis-bench-{args.scale}-")
    os.makedirs(workdir, exist_ok=True)
    log(f"work dir {workdir}")
    common = [f"--series-per-target={spt}", f"--interval={interval}s", "--seed=1"]
    if args.churn_every and args.churn_fraction:
        common += [f"--churn-every={args.churn_every}s", f"--churn-fraction={args.churn_fraction}"]
    live_wl = [f"--targets={targets}", *common]
    ds_wl = [f"--targets={ds_targets}", *common]

    systems: list[System] = []
    skipped: list[str] = []

    def mk(cls, name, **kw):
        d = os.path.join(workdir, name, "data")
        os.makedirs(d, exist_ok=True)
        return cls(name, free_port(), d, workdir, **kw)

    for name in wanted:
        if name == "ignis":
            if os.access(args.ignis_bin, os.X_OK):
                systems.append(mk(Ignis, "ignis", binary=args.ignis_bin))
            else:
                skipped.append(f"ignis: binary {args.ignis_bin} not found (cargo build --release -p ignis)")
        elif name == "prometheus":
            if os.access(Prometheus.BIN, os.X_OK) and shutil.which("promtool"):
                systems.append(mk(Prometheus, "prometheus"))
            else:
                skipped.append("prometheus: /usr/bin/prometheus or promtool missing (apt-get install prometheus)")
        elif name in ("victoriametrics", "vm"):
            if os.access(Victoria.BIN, os.X_OK):
                systems.append(mk(Victoria, "victoriametrics"))
            else:
                skipped.append("victoriametrics: /usr/bin/victoria-metrics missing "
                               "(apt-get install victoria-metrics)")
        else:
            ap.error(f"unknown system {name!r}")
    for s in skipped:
        log("SKIP " + s)

    loadgen_proc = None
    lg_port = free_port()
    results: dict = {"scale": args.scale, "interval_s": interval, "duration_s": duration, "skipped": skipped}
    try:
        # ---- dataset and backfill -----------------------------------------------------------------------------
        end = int(time.time()) // interval * interval
        hours = args.dataset_hours
        om_file = os.path.join(workdir, "dataset.om")
        ds = None
        needs_file = [s for s in systems if isinstance(s, (Prometheus, Ignis))]
        if hours > 0 and needs_file:
            log(f"dataset: {ds_targets} targets x {spt} series, {hours} h at {interval}s -> {om_file}")
            t0 = time.time()
            ds = run_dataset(loadgen, ds_wl, end, hours, "s", om_file)
            log(f"dataset: {ds['samples']:,} samples, {ds['bytes'] / 1e9:.2f} GB in {time.time() - t0:.0f}s")
        for s in systems:
            if hours <= 0:
                break
            before = os.times()
            t0 = time.time()
            if isinstance(s, Prometheus) or (isinstance(s, Ignis) and s.backfill_supported()):
                argv = (["promtool", "tsdb"] if isinstance(s, Prometheus) else [s.binary, "tsdb"]) + [
                    "create-blocks-from", "openmetrics", "--max-block-duration=24h", om_file, s.data]
                log(f"{s.name}: backfill: {' '.join(argv)}")
                with s.logfile("backfill") as lf:
                    r = subprocess.run(argv, stdout=lf, stderr=subprocess.STDOUT)
                after = os.times()
                if r.returncode != 0:
                    s.notes.append(f"backfill failed (exit {r.returncode}), see {s.name}.backfill.log")
                    continue
                cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
                s.backfill = {"samples": ds["samples"], "wall_s": time.time() - t0, "cpu_s": cpu,
                              "disk": du_bytes(s.data)}
            elif isinstance(s, Victoria):
                if not s.start(None):
                    s.notes.append("did not start for import")
                    continue
                cpu0 = proc_cpu_seconds(s.proc.pid)
                log(f"{s.name}: importing dataset via /api/v1/import/prometheus")
                st = import_victoria(s, loadgen, ds_wl, end, hours)
                http_get(s.base + "/internal/force_flush")
                cpu1 = proc_cpu_seconds(s.proc.pid)
                wall = time.time() - t0
                s.stop()  # graceful: flushes; the live phase starts from a fresh process like the others
                s.backfill = {"samples": st["samples"], "wall_s": wall, "cpu_s": cpu1 - cpu0,
                              "disk": du_bytes(s.data)}
                if ds is None:
                    ds = st
            else:
                s.notes.append("no backfill command (`ignis tsdb create-blocks-from openmetrics`): "
                               "24 h range queries see only live data")
            if s.backfill:
                b = s.backfill
                log(f"{s.name}: backfill {b['samples']:,} samples in {b['wall_s']:.0f}s, cpu {b['cpu_s']:.1f}s, "
                    f"disk {b['disk'] / 1e6:.1f} MB")
        if os.path.exists(om_file) and not args.keep:
            os.unlink(om_file)
        results["dataset"] = ds

        # ---- live ---------------------------------------------------------------------------------------------
        lg_log = open(os.path.join(workdir, "loadgen.log"), "ab")
        argv = [loadgen, "serve", *live_wl, f"--listen=127.0.0.1:{lg_port}"]
        log("loadgen: " + " ".join(argv))
        loadgen_proc = subprocess.Popen(argv, stdout=lg_log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_http(f"http://127.0.0.1:{lg_port}/-/healthy", 600, loadgen_proc):
            raise RuntimeError("loadgen did not come up, see loadgen.log")
        lg = json.loads(http_get(f"http://127.0.0.1:{lg_port}/stats")[1])
        results["loadgen"] = lg
        log(f"loadgen: {lg['active_series']:,} series, ~{lg['avg_labels']:.1f} labels and "
            f"{lg['avg_label_value_bytes']:.0f} B of label values per series, render {lg['last_render_seconds']:.2f}s")

        for s in list(systems):
            cfg = scrape_config(os.path.join(workdir, f"{s.name}.yml"), s.name, lg_port, targets, interval)
            if not s.start(cfg):
                msg = f"{s.name}: failed to start (see {s.name}.out.log); skipped"
                log("SKIP " + msg)
                skipped.append(msg)
                s.stop()
                systems.remove(s)
        if not systems:
            raise RuntimeError("no system started")

        log(f"warm-up {warmup}s")
        time.sleep(warmup)

        def snapshot() -> dict:
            st = json.loads(http_get(f"http://127.0.0.1:{lg_port}/stats")[1])
            snap = {"t": time.time(), "served": st["served"], "lg": st, "sys": {},
                    "lg_cpu": proc_cpu_seconds(loadgen_proc.pid)}
            for s in systems:
                if s.proc is None or s.proc.poll() is not None:
                    continue
                snap["sys"][s.name] = {"cpu": proc_cpu_seconds(s.proc.pid), **proc_status(s.proc.pid),
                                       "disk": du_bytes(s.data)}
            return snap

        a = snapshot()
        log(f"measuring for {duration}s")
        t_end = time.time() + duration
        while time.time() < t_end:
            time.sleep(min(30, max(0.0, t_end - time.time())))
            parts = []
            for s in systems:
                if s.proc is not None and s.proc.poll() is None:
                    parts.append(f"{s.name} rss {proc_status(s.proc.pid)['VmRSS'] / 2**20:.0f} MiB")
                else:
                    parts.append(f"{s.name} EXITED")
            log(", ".join(parts))
        b = snapshot()
        for s in systems:
            if s.name not in b["sys"] or s.name not in a["sys"]:
                s.notes.append("process exited during the live phase")
                continue
            sa, sb = a["sys"][s.name], b["sys"][s.name]
            served = b["served"].get(s.name, {}).get("samples", 0) - a["served"].get(s.name, {}).get("samples", 0)
            s.window = {
                "seconds": b["t"] - a["t"],
                "samples": served,
                "cpu_s": sb["cpu"] - sa["cpu"],
                "rss": sb["VmRSS"],
                "hwm": sb["VmHWM"],
                "disk_start": sa["disk"],
                "disk_end": sb["disk"],
                "own_active_series": s.active_series(),
            }
        results["active_series"] = b["lg"]["active_series"]
        results["loadgen_cpu_pct"] = 100 * (b["lg_cpu"] - a["lg_cpu"]) / (b["t"] - a["t"])
        results["loadgen_max_render_s"] = b["lg"]["max_render_seconds"]

        # ---- queries ------------------------------------------------------------------------------------------
        now = time.time()
        queries = dashboard_queries(now, interval)
        for s in systems:
            if s.proc is None or s.proc.poll() is not None:
                continue
            log(f"{s.name}: {len(queries)} queries x {reps} runs")
            run_queries(s, queries, reps)
    finally:
        for s in systems:
            s.stop()
        if loadgen_proc is not None and loadgen_proc.poll() is None:
            loadgen_proc.terminate()
            loadgen_proc.wait()

    results["systems"] = {s.name: {"backfill": s.backfill, "window": s.window, "queries": s.queries,
                                   "notes": s.notes} for s in systems}
    # Answers checked against Prometheus (the reference implementation). All systems are queried at the same
    # `time`/`start`/`end`, but each scrapes at its own phase within the interval, so live-data rates differ
    # a little by construction; backfilled points (most of every 24 h range) should be equal.
    ref = next((s for s in systems if s.name == "prometheus"), None)
    if ref is not None:
        for s in systems:
            if s is ref:
                continue
            for q, got in s.answers.items():
                want = ref.answers.get(q)
                if got is not None and want is not None:
                    s.queries[q]["vs_prometheus"] = compare_answers(want, got)
    table = render_table(results, [s.name for s in systems], args)
    print(table)
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(workdir, "table.md"), "w") as f:
        f.write(table + "\n")
    if args.update_readme:
        update_readme(args.scale, table)
    if not args.workdir and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        log(f"results kept in {workdir}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# Report


def fmt(v, digits=2) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def render_table(res: dict, names: list[str], args) -> str:
    cols = ["ignis", "prometheus", "victoriametrics"]
    syss = res.get("systems", {})
    active = res.get("active_series") or 0

    def metric(fn):
        out = {}
        for c in cols:
            s = syss.get(c)
            try:
                out[c] = fn(s) if s else None
            except (KeyError, TypeError, ZeroDivisionError):
                out[c] = None
        return out

    rows: list[tuple[str, dict, bool]] = []  # (label, values, lower_is_better)

    def add(label, fn, lower=True):
        rows.append((label, metric(fn), lower))

    add("active series (own metric)", lambda s: s["window"]["own_active_series"], lower=False)
    add("RSS bytes / active series", lambda s: s["window"]["rss"] / active)
    add("RSS MiB (end of window)", lambda s: s["window"]["rss"] / 2**20)
    add("peak RSS MiB (VmHWM)", lambda s: s["window"]["hwm"] / 2**20)
    add("samples ingested / s", lambda s: s["window"]["samples"] / s["window"]["seconds"], lower=False)
    add("CPU s / 1M samples ingested", lambda s: s["window"]["cpu_s"] / (s["window"]["samples"] / 1e6))
    add("disk B / sample (24 h backfill)", lambda s: s["backfill"]["disk"] / s["backfill"]["samples"])
    add("disk B / sample (live window)",
        lambda s: (s["window"]["disk_end"] - s["window"]["disk_start"]) / s["window"]["samples"])
    add("backfill CPU s / 1M samples", lambda s: s["backfill"]["cpu_s"] / (s["backfill"]["samples"] / 1e6))
    add("backfill wall s", lambda s: s["backfill"]["wall_s"])
    qnames = []
    for s in syss.values():
        for q in s["queries"]:
            if q not in qnames:
                qnames.append(q)
    for q in qnames:
        add(f"query {q} median ms", lambda s, q=q: s["queries"][q]["median_ms"])
        add(f"query {q} p90 ms", lambda s, q=q: s["queries"][q]["p90_ms"])

    hdr = "| metric | ignis | Prometheus 2.42 | VictoriaMetrics 1.79 | ignis/Prom | ignis/VM |"
    lines = [hdr, "|---|---:|---:|---:|---:|---:|"]
    for label, vals, _lower in rows:
        if all(vals[c] is None for c in cols):
            continue
        cells = [fmt(vals[c]) for c in cols]
        ratios = []
        for peer in ("prometheus", "victoriametrics"):
            a, b = vals["ignis"], vals[peer]
            ratios.append(f"{a / b:.2f}" if a is not None and b not in (None, 0) else "–")
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")

    lg = res.get("loadgen", {})
    ds = res.get("dataset") or {}
    head = [
        f"Scale `{res['scale']}`: {active:,} active series from loadgen ({lg.get('targets', '?')} targets x "
        f"{lg.get('series_per_target', '?')} series, ~{lg.get('avg_labels', 0):.1f} labels and "
        f"~{lg.get('avg_label_value_bytes', 0):.0f} B of label values per series), scrape interval "
        f"{res['interval_s']}s, live window {res['duration_s']}s; dataset {ds.get('series', 0):,} series x "
        f"{args.dataset_hours} h = {ds.get('samples', 0):,} samples. The generator used "
        f"{res.get('loadgen_cpu_pct', 0):.1f}% of one core in the window (slowest render "
        f"{res.get('loadgen_max_render_s', 0):.2f}s). Measured {time.strftime('%Y-%m-%d %H:%M')} "
        f"on {os.cpu_count()} cores ({platform_note()}).",
        "",
    ]
    notes = []
    for s in res.get("skipped", []):
        notes.append(f"- skipped {s}")
    for name in names:
        for n in syss.get(name, {}).get("notes", []):
            notes.append(f"- {name}: {n}")
    # Result-size disagreement is worth a look (scrape phase differences make small gaps normal).
    for q in qnames:
        sizes = {c: syss[c]["queries"].get(q, {}).get("series") for c in syss}
        if len({v for v in sizes.values() if v is not None}) > 1:
            notes.append(f"- `{q}` result sizes differ: " + ", ".join(f"{k}={v}" for k, v in sizes.items()))
    return "\n".join(head + lines + ([""] + notes if notes else []) + answer_table(syss, qnames))


def answer_table(syss: dict, qnames: list[str]) -> list[str]:
    """Answers of ignis and VictoriaMetrics against Prometheus's, one row per query."""
    peers = [c for c in ("ignis", "victoriametrics") if c in syss]
    if "prometheus" not in syss or not any(
            "vs_prometheus" in syss[c]["queries"].get(q, {}) for c in peers for q in qnames):
        return []

    def cell(c: dict | None) -> str:
        if not c:
            return "–"
        if not c["points"]:
            return f"no common points (series -{c['series_only_ref']}/+{c['series_only_got']})"
        txt = (f"{100 * c['points_equal'] / c['points']:.1f}% of {c['points']:,} equal, "
               f"median {c['median_rel_diff']:.1g}, max {c['max_rel_diff']:.1g}")
        if c["series_only_ref"] or c["series_only_got"]:
            txt += f", series -{c['series_only_ref']}/+{c['series_only_got']}"
        if c["points_only_ref"] or c["points_only_got"]:
            txt += f", points -{c['points_only_ref']}/+{c['points_only_got']}"
        return txt

    names = {"ignis": "ignis", "victoriametrics": "VictoriaMetrics"}
    out = ["", "Answers against Prometheus's (relative differences at common series and timestamps; "
               "-/+ = series or points only Prometheus / only the other system returned; live-data rates differ "
               "a little because each system scrapes at its own phase):", "",
           "| query | " + " | ".join(f"{names[c]} vs Prometheus" for c in peers) + " |",
           "|---|" + "---|" * len(peers)]
    for q in qnames:
        out.append(f"| {q} | " + " | ".join(cell(syss[c]["queries"].get(q, {}).get("vs_prometheus"))
                                            for c in peers) + " |")
    return out


def platform_note() -> str:
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "cpu")
        return f"{model}, load {load} at the end"
    except OSError:
        return "unknown cpu"


def update_readme(scale: str, table: str) -> None:
    path = os.path.join(BENCH_DIR, "README.md")
    start, end = f"<!-- bench:{scale}:start -->", f"<!-- bench:{scale}:end -->"
    text = open(path).read() if os.path.exists(path) else ""
    block = f"{start}\n{table}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + f"\n\n### Latest `--scale {scale}` run\n\n{block}\n"
    with open(path, "w") as f:
        f.write(text)
    log(f"updated {path}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
