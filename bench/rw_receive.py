#!/usr/bin/env python3
"""Remote-write receive and /federate benchmark: ignis vs Prometheus 2.42 vs VictoriaMetrics 1.79.

    bench/rw_receive.py --ignis-bin target/release/ignis [--series 100000] [--rounds 10]

Each system runs alone on its own 127.0.0.1 port and temp dir with its remote-write receiver on. The same
pre-encoded stream (bench/rwflood: 1,000 samples per request, one sample per series per round, ~10 labels per
series) is sent to each in turn: one warm-up round creates the series, then `--rounds` rounds are timed.
Reported: receive throughput (samples/s, wall) and samples per CPU-second of the receiver (= per core), from
/proc/<pid>/stat. Then `GET /federate?match[]={__name__=~"flood_metric_.*"}` (every series) is timed 5 times:
median latency and server CPU-seconds per request. Python stdlib only.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICKS


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_ready(url, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def start(name, args, ignis_bin, work):
    port = free_port()
    d = os.path.join(work, name)
    os.makedirs(d)
    log = open(os.path.join(d, "log"), "w")
    if name == "ignis":
        cfg = os.path.join(d, "p.yml")
        open(cfg, "w").write("global:\n  scrape_interval: 1m\n")
        cmd = [ignis_bin, "server", f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
               f"--storage.tsdb.path={d}/data", "--web.enable-remote-write-receiver"]
        ready, write = f"http://127.0.0.1:{port}/-/ready", f"http://127.0.0.1:{port}/api/v1/write"
    elif name == "prometheus":
        cfg = os.path.join(d, "p.yml")
        open(cfg, "w").write("global:\n  scrape_interval: 1m\n")
        cmd = ["prometheus", f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
               f"--storage.tsdb.path={d}/data", "--web.enable-remote-write-receiver"]
        ready, write = f"http://127.0.0.1:{port}/-/ready", f"http://127.0.0.1:{port}/api/v1/write"
    else:
        cmd = ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={d}/data",
               "-search.latencyOffset=0s", "-search.disableCache", "-search.maxSeries=10000000",
               "-search.maxFederateSeries=10000000", "-search.maxExportSeries=10000000"]
        ready, write = f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{port}/api/v1/write"
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    wait_ready(ready)
    return p, port, write


def flood(rwflood, url, series, rounds, start_ms, conc):
    out = subprocess.run([rwflood, "--url", url, "--series", str(series), "--rounds", str(rounds),
                          "--per-request", "1000", "--concurrency", str(conc), "--start-ms", str(start_ms),
                          "--step-ms", "15000"], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def federate(port, pid, n):
    q = urllib.request.quote('{__name__=~"flood_metric_.*"}')
    url = f"http://127.0.0.1:{port}/federate?match[]={q}"
    lat, cpu, lines = [], [], 0
    for _ in range(n):
        c0, t0 = cpu_seconds(pid), time.time()
        with urllib.request.urlopen(url, timeout=300) as r:
            body = r.read()
        lat.append(time.time() - t0)
        cpu.append(cpu_seconds(pid) - c0)
        lines = sum(1 for l in body.split(b"\n") if l and not l.startswith(b"#"))
    return statistics.median(lat), statistics.median(cpu), lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ignis-bin", default=os.path.join(HERE, "..", "target", "release", "ignis"))
    ap.add_argument("--rwflood", default=os.environ.get("RWFLOOD", "/work/target-rwflood/release/rwflood"))
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--systems", default="ignis,prometheus,victoria-metrics")
    args = ap.parse_args()
    if not os.path.exists(args.rwflood):
        sys.exit(f"build bench/rwflood first: CARGO_TARGET_DIR=/work/target-rwflood cargo build --release "
                 f"--manifest-path bench/rwflood/Cargo.toml (or set --rwflood)")
    work = tempfile.mkdtemp(prefix="bench-rw-")
    rows = {}
    try:
        for name in args.systems.split(","):
            if name == "ignis" and not os.path.exists(args.ignis_bin):
                print(f"skipping ignis: {args.ignis_bin} missing", file=sys.stderr)
                continue
            if name != "ignis" and not shutil.which(name):
                print(f"skipping {name}: not installed", file=sys.stderr)
                continue
            p, port, url = start(name, [], args.ignis_bin, work)
            try:
                now = int(time.time() * 1000)
                start_ms = now - (args.rounds + 1) * 15000
                flood(args.rwflood, url, args.series, 1, start_ms, args.concurrency)  # creates the series
                c0 = cpu_seconds(p.pid)
                r = flood(args.rwflood, url, args.series, args.rounds, start_ms + 15000, args.concurrency)
                cpu = cpu_seconds(p.pid) - c0
                time.sleep(1)
                lat, fcpu, lines = federate(port, p.pid, 5)
                rows[name] = {
                    "samples": r["samples"], "errors": r["errors"], "wall_s": r["seconds"], "cpu_s": cpu,
                    "samples_per_s": r["samples"] / r["seconds"], "samples_per_cpu_s": r["samples"] / max(cpu, 1e-9),
                    "rss_mib": rss_mib(p.pid), "federate_ms": lat * 1000, "federate_cpu_s": fcpu,
                    "federate_series": lines,
                }
                print(name, json.dumps(rows[name]), file=sys.stderr)
            finally:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cols = [c for c in ["ignis", "prometheus", "victoria-metrics"] if c in rows]
    print(f"\nremote-write receive, {args.series} series x {args.rounds} rounds, 1,000 samples/request")
    print(f"{'metric':34}" + "".join(f"{c:>18}" for c in cols) + ("   ignis/prom  ignis/vm" if "ignis" in rows else ""))
    for key, label, better in [("samples_per_s", "samples/s (wall)", "hi"),
                               ("samples_per_cpu_s", "samples per CPU-second (per core)", "hi"),
                               ("errors", "failed requests", "lo"), ("rss_mib", "RSS after load, MiB", "lo"),
                               ("federate_series", "/federate series returned", ""),
                               ("federate_ms", "/federate median latency, ms", "lo"),
                               ("federate_cpu_s", "/federate CPU-seconds per request", "lo")]:
        line = f"{label:34}" + "".join(f"{rows[c][key]:>18,.2f}" for c in cols)
        if "ignis" in rows:
            for peer in ["prometheus", "victoria-metrics"]:
                if peer in rows and rows[peer][key]:
                    line += f"{rows['ignis'][key] / rows[peer][key]:>11.2f}"
                else:
                    line += f"{'-':>11}"
        print(line)


if __name__ == "__main__":
    main()
