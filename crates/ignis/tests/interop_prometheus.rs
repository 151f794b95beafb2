//! Federation, remote write and remote read with a real Prometheus (Debian's 2.42) on the other end, in both
//! directions, with the seed's configs (host names adapted to 127.0.0.1 ports).

mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The seed's `prometheus-main.yml` federating from a secondary, here with the roles given.
fn federate_config(target_port: u16) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: 'federate'\n    honor_labels: true\n    metrics_path: '/federate'\n    params:\n      'match[]': ['{{job=~\".*\"}}']\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )
}

fn self_scrape(port: u16, job: &str, external: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n{external}scrape_configs:\n  - job_name: '{job}'\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
}

#[test]
fn prometheus_federates_from_ignis() {
    if !have_peer("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ip, pp) = (free_port(), free_port());
    let icfg = write_file(dir.path(), "secondary.yml", &self_scrape(ip, "ignis-self", "  external_labels:\n    site: secondary\n"));
    let _ignis = start_server(ip, dir.path(), &icfg, &[]);
    let pcfg = write_file(dir.path(), "main.yml", &federate_config(ip));
    let _prom = start_prometheus(pp, dir.path(), &pcfg, &[]);
    let pbase = format!("http://127.0.0.1:{pp}");
    // honor_labels keeps the federated job/instance; external labels are attached.
    wait_until(T, "federated up{job=ignis-self} in Prometheus", || {
        !query_vector(&pbase, "up{job=\"ignis-self\",site=\"secondary\"}").is_empty()
    });
    let got = query_vector(&pbase, "up{job=\"ignis-self\"}");
    assert_eq!(got[0].0["instance"], format!("127.0.0.1:{ip}"));
    assert_eq!(got[0].1, "1");
    // The federate scrape itself succeeded.
    let up = query_vector(&pbase, "up{job=\"federate\"}");
    assert_eq!(up[0].1, "1", "{up:?}");
}

#[test]
fn ignis_federates_from_prometheus() {
    if !have_peer("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ip, pp) = (free_port(), free_port());
    let pcfg = write_file(dir.path(), "secondary.yml", &self_scrape(pp, "prometheus", ""));
    let _prom = start_prometheus(pp, dir.path(), &pcfg, &[]);
    let icfg = write_file(dir.path(), "main.yml", &federate_config(pp));
    let _ignis = start_server(ip, dir.path(), &icfg, &[]);
    let ibase = format!("http://127.0.0.1:{ip}");
    let pbase = format!("http://127.0.0.1:{pp}");
    wait_until(T, "federated series in ignis", || {
        !query_vector(&ibase, "prometheus_build_info{job=\"prometheus\"}").is_empty()
    });
    // Static values agree between the source and the federated copy.
    let mine = query_vector(&ibase, "prometheus_build_info{job=\"prometheus\"}");
    let theirs = query_vector(&pbase, "prometheus_build_info{job=\"prometheus\"}");
    assert_eq!(mine, theirs);
    let up = query_vector(&ibase, "up{job=\"federate\"}");
    assert_eq!(up[0].1, "1", "{up:?}");
}

#[test]
fn prometheus_remote_writes_into_ignis_and_reads_back() {
    if !have_peer("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ip, pp) = (free_port(), free_port());
    let icfg = write_file(dir.path(), "ignis.yml", &self_scrape(ip, "ignis-self", ""));
    let _ignis = start_server(ip, dir.path(), &icfg, &["--web.enable-remote-write-receiver"]);
    let ibase = format!("http://127.0.0.1:{ip}");
    let pcfg = write_file(
        dir.path(),
        "prom.yml",
        &format!(
            "{}remote_write:\n  - url: http://127.0.0.1:{ip}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\nremote_read:\n  - url: http://127.0.0.1:{ip}/api/v1/read\n    read_recent: true\n",
            self_scrape(pp, "prom", "")
        ),
    );
    let _prom = start_prometheus(pp, dir.path(), &pcfg, &[]);
    let pbase = format!("http://127.0.0.1:{pp}");
    wait_until(T, "remote-written series in ignis", || !query_vector(&ibase, "up{job=\"prom\"}").is_empty());
    // Every sample Prometheus has for a series over a closed window arrived exactly once.
    std::thread::sleep(Duration::from_secs(4));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 3;
    let cq = format!("count_over_time(prometheus_build_info{{job=\"prom\"}}[1h] @ {now})");
    let theirs = query_vector(&pbase, &cq);
    let mine = query_vector(&ibase, &cq);
    assert_eq!(mine, theirs, "samples in ignis vs Prometheus");
    // Remote read: Prometheus answers a query from ignis's data for a metric only ignis has.
    let via_read = query_vector(&pbase, "up{job=\"ignis-self\"}");
    assert_eq!(via_read.len(), 1, "{via_read:?}");
    assert_eq!(via_read, query_vector(&ibase, "up{job=\"ignis-self\"}"));
}

#[test]
fn ignis_reads_from_prometheus() {
    if !have_peer("prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ip, pp) = (free_port(), free_port());
    let pcfg = write_file(dir.path(), "prom.yml", &self_scrape(pp, "only-in-prom", ""));
    let _prom = start_prometheus(pp, dir.path(), &pcfg, &[]);
    let pbase = format!("http://127.0.0.1:{pp}");
    wait_until(T, "Prometheus self-scrape", || !query_vector(&pbase, "up{job=\"only-in-prom\"}").is_empty());
    let icfg = write_file(
        dir.path(),
        "ignis.yml",
        &format!("global:\n  scrape_interval: 1m\nremote_read:\n  - url: http://127.0.0.1:{pp}/api/v1/read\n    read_recent: true\n"),
    );
    let _ignis = start_server(ip, dir.path(), &icfg, &[]);
    let ibase = format!("http://127.0.0.1:{ip}");
    std::thread::sleep(Duration::from_secs(2));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() - 1;
    for q in [
        format!("up{{job=\"only-in-prom\"}} @ {now}"),
        format!("count_over_time(prometheus_build_info[1h] @ {now})"),
        format!("max_over_time(up{{job=\"only-in-prom\"}}[1h] @ {now})"),
    ] {
        let theirs = query_vector(&pbase, &q);
        assert!(!theirs.is_empty(), "{q}");
        assert_eq!(query_vector(&ibase, &q), theirs, "{q}");
    }
}
