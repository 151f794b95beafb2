//! `ignis tsdb create-blocks-from openmetrics | dump | list`: promtool reads what we backfill, our dump equals
//! promtool's, and `ignis server` on the directory serves the backfilled samples.

mod common;
use common::*;
use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("run");
    assert!(out.status.success(), "{bin} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn backfill_dump_list_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    // 3 series over 5 hours at 60 s (crosses 2h block boundaries), one stale marker-free gauge with NaN.
    let mut om = String::from("# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n");
    let base = 1_700_000_000i64;
    for i in 0..300 {
        let t = base + i * 60;
        om.push_str(&format!("http_requests_total{{code=\"200\",job=\"api\"}} {} {t}\n", i * 3));
        om.push_str(&format!("http_requests_total{{code=\"500\",job=\"api\"}} {} {t}\n", i / 7));
    }
    om.push_str("# TYPE temp gauge\n");
    for i in 0..300 {
        let v = if i == 10 { "NaN".to_string() } else { format!("{}.25", i % 40) };
        om.push_str(&format!("temp{{room=\"a\"}} {v} {}\n", base + i * 60));
    }
    om.push_str("# EOF\n");
    let input = write_file(dir.path(), "in.om", &om);
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    run(ignis_bin(), &["tsdb", "create-blocks-from", "openmetrics", input.to_str().unwrap(), data_s]);

    let list = run(ignis_bin(), &["tsdb", "list", data_s]);
    assert!(list.starts_with("BLOCK ULID"), "{list}");
    assert!(list.lines().count() >= 3, "blocks:\n{list}");
    let ours = run(ignis_bin(), &["tsdb", "dump", data_s]);
    assert_eq!(ours.lines().count(), 900, "{ours}");
    let ours_sel = run(ignis_bin(), &["tsdb", "dump", "--match=temp", data_s]);
    assert_eq!(ours_sel.lines().count(), 300);

    if have_peer("promtool") {
        // promtool opens the directory as a DB and insists on a wal/ folder, as it does for its own backfills.
        std::fs::create_dir_all(data.join("wal")).unwrap();
        assert_eq!(run("promtool", &["tsdb", "dump", data_s]), ours, "promtool reads our blocks identically");
        assert_eq!(run("promtool", &["tsdb", "list", data_s]), list);
        let analyze = run("promtool", &["tsdb", "analyze", data_s]);
        assert!(analyze.contains("http_requests_total"), "{analyze}");
    }

    // The server serves the backfilled blocks.
    let port = free_port();
    let cfg = write_file(dir.path(), "p.yml", "global:\n  scrape_interval: 1m\n");
    let _s = start_server(port, dir.path(), &cfg, &["--storage.tsdb.retention.time=100000d"]);
    let at = base + 299 * 60;
    let got = query_vector(&format!("http://127.0.0.1:{port}"), &format!("count_over_time(http_requests_total[1d] @ {at})"));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(_, v)| v == "300"), "{got:?}");
}
