# Usage: python3 bench/restart_query.py WORKDIR IGNIS_BIN [QUERY]
# After a bench/run.py run (WORKDIR kept), restarts each system alone at rest on its data (no scraping), runs the
# instant QUERY at the end of the data (ignis head max time): median of 5 timed runs after a warm-up, and the
# peak RSS growth during them (VmHWM after resetting it with /proc/PID/clear_refs). Default QUERY: sum by (job)
# of rate over the counter and bucket series (issue 4 asks for sum(rate(x[5m])) by (job) over 100k series).
import sys, os, time, json, subprocess, statistics, urllib.parse, urllib.request, socket
W, BIN = sys.argv[1], sys.argv[2]
Q = sys.argv[3] if len(sys.argv) > 3 else 'sum by (job) (rate({job="bench",__name__=~"bench_.+_total|bench_.+_bucket"}[5m]))'
empty = os.path.join(W, 'empty.yml'); open(empty, 'w').write('global:\n  scrape_interval: 15s\n')
def port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p
def get(p, path, params=None, timeout=600):
    url = f'http://127.0.0.1:{p}{path}' + ('?' + urllib.parse.urlencode(params) if params else '')
    with urllib.request.urlopen(url, timeout=timeout) as r: return json.loads(r.read())
def status(pid):
    d = {}
    for l in open(f'/proc/{pid}/status'):
        k, _, v = l.partition(':')
        if k in ('VmRSS', 'VmHWM'): d[k] = int(v.split()[0]) * 1024
    return d
T = None
for name in ('ignis', 'prometheus', 'victoriametrics'):
    p = port()
    cmd = {'ignis': [BIN, 'server', f'--config.file={empty}', f'--web.listen-address=127.0.0.1:{p}', f'--storage.tsdb.path={W}/ignis/data', '--storage.tsdb.retention.time=30d'],
           'prometheus': ['prometheus', f'--config.file={empty}', f'--web.listen-address=127.0.0.1:{p}', f'--storage.tsdb.path={W}/prometheus/data', '--storage.tsdb.retention.time=30d', '--log.level=warn'],
           'victoriametrics': ['victoria-metrics', f'-storageDataPath={W}/victoriametrics/data', f'-httpListenAddr=127.0.0.1:{p}', '-retentionPeriod=10y', '-search.disableCache', '-search.maxUniqueTimeseries=50000000', '-search.maxQueryDuration=300s', '-loggerLevel=WARN']}[name]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f'/tmp/sumjob-{name}.log', 'w'))
    for _ in range(600):
        try:
            if get(p, '/api/v1/query', {'query': '1'}, 5)['status'] == 'success': break
        except Exception: time.sleep(0.5)
    time.sleep(10)
    if T is None:
        T = get(p, '/api/v1/status/tsdb')['data']['headStats']['maxTime'] / 1000
    n = get(p, '/api/v1/query', {'query': f'count({Q.split("rate(")[1].rsplit("[",1)[0]})', 'time': T})['data']['result']
    r0 = get(p, '/api/v1/query', {'query': Q, 'time': T})
    with open(f'/proc/{proc.pid}/clear_refs', 'w') as f: f.write('5')
    before = status(proc.pid)['VmRSS']
    ts = []
    for i in range(5):
        t0 = time.perf_counter(); r = get(p, '/api/v1/query', {'query': Q, 'time': T, 'nocache': '1'}); ts.append(time.perf_counter() - t0)
    st = status(proc.pid)
    print(f'{name}: series {n[0]["value"][1] if n else "?"}, median {statistics.median(ts)*1000:.0f} ms (runs {", ".join(f"{t*1000:.0f}" for t in ts)}), '
          f'RSS before {before/2**20:.0f} MiB, peak growth {(st["VmHWM"]-before)/2**20:.1f} MiB, result {[(x["metric"], x["value"][1]) for x in r["data"]["result"]]}', flush=True)
    proc.terminate(); proc.wait(60)
