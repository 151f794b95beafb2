use super::*;

fn load(s: &str) -> Config {
    Config::from_yaml_str(s, Path::new("/etc/prometheus")).unwrap_or_else(|e| panic!("{s}\n=> {e}"))
}

fn load_err(s: &str) -> ConfigError {
    match Config::from_yaml_str(s, Path::new("/etc/prometheus")) {
        Ok(c) => panic!("expected an error for\n{s}\ngot {c:?}"),
        Err(e) => e,
    }
}

/// The configs of the user guide in shared/seed, verbatim.
const SEED_PHASE1: &str = "global:
  scrape_interval: 15s

scrape_configs:
  - job_name: 'prometheus'
    static_configs:
      - targets: ['prometheus:9090']

  - job_name: 'node'
    static_configs:
      - targets: ['node-exporter:9100']
";

const SEED_FEDERATE: &str = "scrape_configs:
  - job_name: 'federate'
    honor_labels: true
    metrics_path: '/federate'
    params:
      'match[]': ['{job=~\".*\"}']
    static_configs:
      - targets: ['prometheus-secondary:9090']
";

const SEED_SELF: &str = "scrape_configs:
  - job_name: 'self'
    static_configs:
      - targets: ['localhost:9090']
";

const SEED_GLOBAL: &str = "global:
  scrape_interval: 30s
  evaluation_interval: 30s
";

const SEED_RULES: &str = "rule_files:
  - \"recording_rules.yml\"
";

#[test]
fn seed_configs_load() {
    let c = load(SEED_PHASE1);
    assert_eq!(c.global.scrape_interval, Duration::from_secs(15));
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(c.global.evaluation_interval, Duration::from_secs(60));
    assert_eq!(c.scrape_configs.len(), 2);
    let p = &c.scrape_configs[0];
    assert_eq!(p.job_name, "prometheus");
    assert_eq!(p.scrape_interval, Duration::from_secs(15));
    assert_eq!(p.scrape_timeout, Duration::from_secs(10));
    assert_eq!(p.metrics_path, "/metrics");
    assert_eq!(p.scheme, "http");
    assert!(p.honor_timestamps && !p.honor_labels && p.follow_redirects && p.enable_http2);
    assert_eq!(p.static_configs[0].targets, vec!["prometheus:9090"]);

    let f = load(SEED_FEDERATE);
    let f = &f.scrape_configs[0];
    assert!(f.honor_labels);
    assert_eq!(f.metrics_path, "/federate");
    assert_eq!(f.params["match[]"], vec!["{job=~\".*\"}"]);
    assert_eq!(f.scrape_interval, Duration::from_secs(60));

    assert_eq!(load(SEED_SELF).scrape_configs[0].static_configs[0].targets, vec!["localhost:9090"]);
    let g = load(SEED_GLOBAL);
    assert_eq!(g.global.evaluation_interval, Duration::from_secs(30));
    assert_eq!(g.global.scrape_timeout, Duration::from_secs(10));
    let r = load(SEED_RULES);
    assert_eq!(r.rule_files, vec!["/etc/prometheus/recording_rules.yml"]);
}

#[test]
fn empty_documents_get_defaults() {
    for s in ["", "# nothing\n", "---\n", "global:\n"] {
        let c = load(s);
        assert_eq!(c.global.scrape_interval, Duration::from_secs(60), "{s:?}");
        assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
        assert_eq!(c.global.scrape_protocols, default_scrape_protocols());
    }
}

#[test]
fn unknown_fields_name_field_type_and_line() {
    let e = load_err("global:\n  scrape_interval: 15s\nscrape_configs:\n- job_name: a\n  foo: 1\n");
    let s = e.to_string();
    assert_eq!(e.line(), Some(5), "{s}");
    assert!(s.contains("line 5: field foo not found in type config.ScrapeConfig"), "{s}");

    let e = load_err("scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: [a:1]\n    bogus: x\n");
    assert_eq!(e.line(), Some(5));
    assert!(e.to_string().contains("field bogus not found"), "{e}");

    let e = load_err("global:\n  scrape_intervall: 1m\n");
    assert!(e.to_string().contains("line 2: field scrape_intervall not found in type config.plain"), "{e}");

    let e = load_err("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - sourcelabels: [a]\n");
    assert!(e.to_string().contains("field sourcelabels not found in type relabel.plain"), "{e}");
    assert_eq!(e.line(), Some(4));

    let e = load_err("remote_write:\n- url: http://x/\n  queue_config:\n    capacityy: 5\n");
    assert!(e.to_string().contains("field capacityy not found in type config.QueueConfig"), "{e}");

    let e = load_err("foo: 1\n");
    assert!(e.to_string().contains("line 1: field foo not found"), "{e}");
}

#[test]
fn bad_values_have_lines() {
    let e = load_err("global:\n  scrape_interval: 1x\n");
    assert_eq!(e.line(), Some(2));
    assert!(e.to_string().contains("not a valid duration string"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - action: nope\n");
    assert!(e.to_string().contains("unknown relabel action \"nope\""), "{e}");
    assert!(e.line().is_some());
}

#[test]
fn timeouts_and_inheritance() {
    // Timeout defaults to min(global timeout, interval).
    let c = load("scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n");
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(5));
    let c = load("global:\n  scrape_interval: 5s\n");
    assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
    let c = load("global:\n  scrape_timeout: 3s\n  sample_limit: 10\n  body_size_limit: 10MB\nscrape_configs:\n- job_name: a\n- job_name: b\n  sample_limit: 5\n");
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(3));
    assert_eq!(c.scrape_configs[0].sample_limit, 10);
    assert_eq!(c.scrape_configs[0].body_size_limit, ByteSize(10 << 20));
    assert_eq!(c.scrape_configs[1].sample_limit, 5);

    let e = load_err("scrape_configs:\n- job_name: a\n  scrape_interval: 5s\n  scrape_timeout: 6s\n");
    assert!(e.to_string().contains("scrape timeout greater than scrape interval for scrape config with job name \"a\""));
    let e = load_err("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n");
    assert!(e.to_string().contains("global scrape timeout greater than scrape interval"));
    let e = load_err("scrape_configs:\n- job_name: a\n- job_name: a\n");
    assert!(e.to_string().contains("found multiple scrape configs with job name \"a\""));
    let e = load_err("scrape_configs:\n- scrape_interval: 5s\n");
    assert!(e.to_string().contains("job_name is empty"));
    let e = load_err("scrape_configs:\n- job_name: a\n  static_configs:\n  - targets: ['http://x:1/metrics']\n");
    assert!(e.to_string().contains("is not a valid hostname"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  scrape_protocols: [Foo]\n");
    assert!(e.to_string().contains("unknown scrape protocol Foo"), "{e}");
    let e = load_err("rule_files: ['a/*/b.yml']\n");
    assert!(e.to_string().contains("invalid rule file path"), "{e}");
}

#[test]
fn http_client_fields() {
    let c = load(
        "scrape_configs:\n- job_name: a\n  bearer_token: s3cret\n  tls_config:\n    insecure_skip_verify: true\n    ca_file: ca.pem\n",
    );
    let h = c.scrape_configs[0].http_client();
    let a = h.authorization.unwrap();
    assert_eq!(a.kind, "Bearer");
    assert_eq!(a.credentials.expose(), "s3cret");
    assert!(h.tls_config.insecure_skip_verify);
    assert_eq!(h.tls_config.ca_file, "/etc/prometheus/ca.pem");
    let e = load_err("scrape_configs:\n- job_name: a\n  bearer_token: x\n  basic_auth:\n    username: u\n");
    assert!(e.to_string().contains("at most one of basic_auth, oauth2, bearer_token & bearer_token_file"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  authorization:\n    type: Basic\n");
    assert!(e.to_string().contains("use \"basic_auth\" instead"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  basic_auth:\n    password: a\n    password_file: b\n");
    assert!(e.to_string().contains("at most one of basic_auth password & password_file"), "{e}");
}

#[test]
fn other_sections_parse_and_validate() {
    let c = load(
        "alerting:
  alert_relabel_configs:
  - action: labeldrop
    regex: replica
  alertmanagers:
  - static_configs:
    - targets: ['am:9093']
    path_prefix: /am
    timeout: 5s
remote_write:
- url: http://remote/api/v1/write
  name: rw1
  headers: {X-Scope-OrgID: t1}
  write_relabel_configs:
  - source_labels: [__name__]
    regex: 'go_.*'
    action: drop
  queue_config:
    max_shards: 10
    retry_on_http_429: true
  metadata_config:
    send: false
remote_read:
- url: http://remote/api/v1/read
  read_recent: true
  required_matchers: {job: x}
storage:
  tsdb:
    out_of_order_time_window: 30m
  exemplars:
    max_exemplars: 10
",
    );
    let am = &c.alerting.alertmanagers[0];
    assert_eq!(am.api_version, "v2");
    assert_eq!(am.scheme, "http");
    assert_eq!(am.timeout, Duration::from_secs(5));
    let rw = &c.remote_write[0];
    assert_eq!(rw.remote_timeout, Duration::from_secs(30));
    assert_eq!(rw.queue_config.max_shards, 10);
    assert_eq!(rw.queue_config.capacity, 10000);
    assert_eq!(rw.queue_config.min_backoff, Duration::from_millis(30));
    assert!(rw.queue_config.retry_on_http_429);
    assert!(!rw.metadata_config.send);
    assert_eq!(rw.metadata_config.send_interval, Duration::from_secs(60));
    let rr = &c.remote_read[0];
    assert!(rr.read_recent && rr.filter_external_labels);
    assert_eq!(rr.remote_timeout, Duration::from_secs(60));
    assert_eq!(c.storage.tsdb.as_ref().unwrap().out_of_order_time_window, Duration::from_secs(1800));
    assert_eq!(c.storage.exemplars.as_ref().unwrap().max_exemplars, 10);

    let e = load_err("remote_write:\n- name: x\n");
    assert!(e.to_string().contains("url for remote_write is empty"));
    let e = load_err("remote_write:\n- url: http://a/\n  headers: {Authorization: x}\n");
    assert!(e.to_string().contains("authorization header must be changed"), "{e}");
    let e = load_err("remote_write:\n- url: http://a/\n  name: n\n- url: http://b/\n  name: n\n");
    assert!(e.to_string().contains("found multiple remote write configs"), "{e}");
    let e = load_err("alerting:\n  alertmanagers:\n  - api_version: v3\n");
    assert!(e.to_string().contains("expected Alertmanager api version"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: ['targets.txt']\n");
    assert!(e.to_string().contains("is not valid for file discovery"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  dns_sd_configs:\n  - names: [x]\n    type: A\n");
    assert!(e.to_string().contains("a port is required"), "{e}");
    let e = load_err("scrape_configs:\n- job_name: a\n  http_sd_configs:\n  - url: ftp://x/\n");
    assert!(e.to_string().contains("URL scheme must be"), "{e}");
}

#[test]
fn sd_configs_defaults() {
    let c = load(
        "scrape_configs:\n- job_name: a\n  file_sd_configs:\n  - files: ['t/*.json']\n  http_sd_configs:\n  - url: http://sd/\n  dns_sd_configs:\n  - names: [_x._tcp.example.org]\n",
    );
    let s = &c.scrape_configs[0];
    assert_eq!(s.file_sd_configs[0].refresh_interval, Duration::from_secs(300));
    assert_eq!(s.file_sd_configs[0].files, vec!["/etc/prometheus/t/*.json"]);
    assert_eq!(s.http_sd_configs[0].refresh_interval, Duration::from_secs(60));
    assert_eq!(s.dns_sd_configs[0].refresh_interval, Duration::from_secs(30));
    assert_eq!(s.dns_sd_configs[0].kind, "SRV");
}

#[test]
fn serialization_fills_defaults_and_hides_secrets() {
    let c = load("scrape_configs:\n- job_name: a\n  basic_auth:\n    username: u\n    password: hunter2\n  static_configs:\n  - targets: [x:1]\n");
    let y = c.to_yaml();
    assert!(!y.contains("hunter2"), "{y}");
    assert!(y.contains("<secret>"), "{y}");
    assert!(y.contains("scrape_interval: 1m"), "{y}");
    assert!(y.contains("scrape_timeout: 10s"), "{y}");
    assert!(y.contains("metrics_path: /metrics"), "{y}");
    assert!(y.contains("follow_redirects: true"), "{y}");
    // The serialized form loads back to the same config (except the hidden secret).
    let back = load(&y);
    assert_eq!(back.scrape_configs[0].scrape_interval, c.scrape_configs[0].scrape_interval);
    assert_eq!(back.scrape_configs[0].static_configs, c.scrape_configs[0].static_configs);
    assert_eq!(back.global, c.global);
}

#[test]
fn default_self_scrape_config() {
    let c = Config::default_self_scrape("0.0.0.0:9090");
    assert_eq!(c.scrape_configs[0].job_name, "prometheus");
    assert_eq!(c.scrape_configs[0].static_configs[0].targets, vec!["localhost:9090"]);
    assert_eq!(c.scrape_configs[0].scrape_interval, Duration::from_secs(15));
    assert_eq!(c.scrape_configs[0].scrape_timeout, Duration::from_secs(10));
    let c = Config::default_self_scrape("127.0.0.1:9191");
    assert_eq!(c.scrape_configs[0].static_configs[0].targets, vec!["127.0.0.1:9191"]);
    // It is itself a valid config.
    load(&c.to_yaml());
}

#[test]
fn check_config_like_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, format!("{SEED_PHASE1}{SEED_RULES}")).unwrap();
    let r = check_config(&cfg);
    assert_eq!(r.exit_code, 1);
    assert!(r.stderr.contains("does not point to an existing file"), "{}", r.stderr);

    std::fs::write(dir.path().join("recording_rules.yml"), "groups: []\n").unwrap();
    let r = check_config(&cfg);
    assert_eq!(r.exit_code, 0, "{}", r.stderr);
    let name = cfg.display();
    assert_eq!(
        r.stdout,
        format!("Checking {name}\n  SUCCESS: 1 rule files found\n SUCCESS: {name} is valid prometheus config file syntax\n\n")
    );
    assert_eq!(r.rule_files, vec![dir.path().join("recording_rules.yml")]);

    std::fs::write(&cfg, "scrape_configs:\n- job_name: a\n  nope: 1\n").unwrap();
    let r = check_config(&cfg);
    assert_eq!(r.exit_code, 1);
    assert!(r.stderr.starts_with(&format!("  FAILED: parsing YAML file {name}: yaml: unmarshal errors:\n  line 3: field nope")), "{}", r.stderr);
}

#[test]
fn scrape_config_files_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("extra.yml"), "scrape_configs:\n- job_name: extra\n  static_configs:\n  - targets: [e:1]\n").unwrap();
    let c = Config::from_yaml_str("scrape_config_files: ['*.yml']\nscrape_configs:\n- job_name: main\n", dir.path()).unwrap();
    let all = c.get_scrape_configs().unwrap();
    assert_eq!(all.iter().map(|s| s.job_name.as_str()).collect::<Vec<_>>(), vec!["main", "extra"]);
    assert_eq!(all[1].scrape_interval, Duration::from_secs(60));
    std::fs::write(dir.path().join("dup.yml"), "scrape_configs:\n- job_name: main\n").unwrap();
    let e = c.get_scrape_configs().unwrap_err();
    assert!(e.to_string().contains("found multiple scrape configs with job name \"main\""), "{e}");
}

/// Realistic sections of SD mechanisms ignis does not implement (from Prometheus's example configs).
const UNSUPPORTED_SD: &str = r#"
alerting:
  alertmanagers:
  - kubernetes_sd_configs:
    - role: pod
      namespaces: {names: [monitoring]}
scrape_configs:
- job_name: k8s-pods
  kubernetes_sd_configs:
  - role: pod
    api_server: https://k8s:6443
    tls_config: {ca_file: /var/run/ca.crt, insecure_skip_verify: false}
    selectors:
    - {role: pod, label: "app=web"}
  relabel_configs:
  - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
    action: keep
    regex: true
- job_name: mixed
  static_configs:
  - targets: [a:1]
  consul_sd_configs:
  - server: localhost:8500
    token: s3cr3t
    services: [web, db]
    tag_separator: ","
    refresh_interval: 30s
  ec2_sd_configs:
  - region: eu-west-1
    access_key: AKIA
    secret_key: topsecret
    port: 9100
    filters: [{name: "tag:env", values: [prod]}]
  azure_sd_configs: [{subscription_id: x, tenant_id: y}]
  gce_sd_configs: [{project: p, zone: z}]
  docker_sd_configs: [{host: "unix:///var/run/docker.sock"}]
  dockerswarm_sd_configs: [{host: "unix:///var/run/docker.sock", role: tasks}]
  digitalocean_sd_configs: [{}]
  eureka_sd_configs: [{server: "http://e:8761/eureka"}]
  hetzner_sd_configs: [{role: hcloud}]
  ionos_sd_configs: [{datacenter_id: d}]
  kuma_sd_configs: [{server: "http://k:5676"}]
  lightsail_sd_configs: [{region: us-east-1}]
  linode_sd_configs: [{}]
  marathon_sd_configs: [{servers: ["http://m:8080"]}]
  nerve_sd_configs: [{servers: [zk], paths: [/x]}]
  nomad_sd_configs: [{server: "http://n:4646"}]
  openstack_sd_configs: [{role: instance, region: r, identity_endpoint: "http://o", password: pw}]
  ovhcloud_sd_configs: [{application_key: a, application_secret: b, consumer_key: c, service: vps}]
  puppetdb_sd_configs: [{url: "http://p", query: "resources { type = \"Class\" }"}]
  scaleway_sd_configs: [{project_id: p, role: instance, access_key: a, secret_key: b}]
  serverset_sd_configs: [{servers: [zk], paths: [/x]}]
  triton_sd_configs: [{account: a, dns_suffix: d, endpoint: e}]
  uyuni_sd_configs: [{server: "http://u", username: u, password: p}]
  vultr_sd_configs: [{}]
"#;

#[test]
fn unsupported_sd_configs_load_with_warnings() {
    let c = load(UNSUPPORTED_SD);
    let k8s = &c.scrape_configs[0];
    assert_eq!(k8s.unsupported_sd(), vec![("kubernetes_sd_configs", 1)]);
    let mixed = &c.scrape_configs[1];
    // Every key but kubernetes (used by the other job).
    assert_eq!(mixed.unsupported_sd().len(), crate::UNSUPPORTED_SD_KEYS.len() - 1);
    assert_eq!(mixed.static_configs[0].targets, vec!["a:1"]);
    let w = c.unsupported_sd_warnings();
    assert_eq!(w.len(), 1 + 24 + 1, "{w:#?}");
    assert_eq!(
        w[0],
        "scrape job \"k8s-pods\": kubernetes service discovery (kubernetes_sd_configs) is not supported by ignis; no targets from it"
    );
    assert!(w.last().unwrap().starts_with("alertmanager config 0: kubernetes service discovery"), "{w:#?}");
    // Kept for /api/v1/status/config, secrets hidden; the output loads again to an equal config.
    let y = c.to_yaml();
    for secret in ["s3cr3t", "topsecret", "pw"] {
        assert!(!y.contains(secret), "{secret} leaked:\n{y}");
    }
    assert!(y.contains("api_server: https://k8s:6443"), "{y}");
    assert_eq!(load(&y).scrape_configs[0], c.scrape_configs[0]);
    // Still strict inside the known parts, and unknown *_sd_configs keys still fail.
    let e = load_err("scrape_configs:\n- job_name: a\n  foo_sd_configs: [{}]\n");
    assert!(e.to_string().contains("field foo_sd_configs not found in type config.ScrapeConfig"), "{e}");
}

#[test]
fn check_config_warns_about_unsupported_sd() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, UNSUPPORTED_SD).unwrap();
    let r = check_config(&cfg);
    assert_eq!(r.exit_code, 0, "{}", r.stderr);
    assert_eq!(r.warnings.len(), 26);
    assert!(r.stdout.contains("  WARNING: scrape job \"mixed\": consul service discovery (consul_sd_configs) is not supported by ignis; no targets from it\n"), "{}", r.stdout);
    assert!(r.stdout.contains("SUCCESS"), "{}", r.stdout);
}

#[test]
fn relabel_regexes_have_go_ascii_classes() {
    let c = load("scrape_configs:\n- job_name: a\n  relabel_configs:\n  - source_labels: [v]\n    regex: '(\\w+)-(\\d+)'\n    target_label: out\n    replacement: $1/$2\n");
    let rc = &c.scrape_configs[0].relabel_configs;
    let run = |v: &str| crate::relabel(&model::labels!("v" => v), rc).and_then(|l| l.get("out").map(str::to_string));
    assert_eq!(run("web_1-42").as_deref(), Some("web_1/42"));
    // Go's \w and \d are ASCII: these do not match, so no `out` label.
    assert_eq!(run("café-42"), None);
    assert_eq!(run("web-٤٢"), None);
}
