//! --web.config.file end to end: TLS with an rcgen certificate (relative paths in the YAML), bcrypt basic
//! auth, configured headers, certificate rotation without restart, and startup refusal of bad files.
//! When Debian's node_exporter is installed the same file is served by it too and the answers compared.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: exporter::Args,
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes ca.pem plus a leaf certificate for 127.0.0.1 (cert.pem/key.pem) into `dir`; returns the CA PEM.
fn write_certs(dir: &Path, cn: &str) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{cn} CA"));
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let leaf = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
    std::fs::write(dir.join("cert.pem"), leaf.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
    ca.pem()
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// (status, WWW-Authenticate, X-Frame-Options, body contains node_load1) for one GET.
async fn probe(
    c: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> Result<(u16, String, String, bool), reqwest::Error> {
    let mut rq = c.get(url);
    if let Some((u, p)) = auth {
        rq = rq.basic_auth(u, Some(p));
    }
    let r = rq.send().await?;
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (st, www, xfo) = (
        r.status().as_u16(),
        h("www-authenticate"),
        h("x-frame-options"),
    );
    let body = r.text().await?;
    Ok((st, www, xfo, body.contains("node_load1")))
}

async fn wait_tls(c: &reqwest::Client, url: &str) {
    // Generous: the shared test machine can be very loaded.
    for _ in 0..300 {
        if c.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

#[test]
fn tls_and_basic_auth_from_web_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_certs(dir.path(), "first");
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let web = dir.path().join("web.yml");
    // Relative cert/key paths: resolved against the config file's directory.
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  alice: {hash}\n"
        ),
    )
    .expect("write web.yml");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let port = common::free_port();
    let cli = Cli::parse_from([
        "ignis".to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        format!("--web.config.file={}", web.display()),
        "--collector.disable-defaults".into(),
        "--collector.loadavg".into(),
    ]);
    let server = rt.spawn(async move {
        let r = exporter::run(cli.args).await;
        if let Err(e) = &r {
            eprintln!("ignis exporter stopped: {e}");
        }
        r
    });
    let c = client(&ca);
    let url = format!("https://127.0.0.1:{port}/metrics");
    rt.block_on(async {
        wait_tls(&c, &url).await;
        let no_auth = probe(&c, &url, None).await.expect("no auth");
        assert_eq!(no_auth.0, 401);
        assert_eq!(no_auth.1, "Basic");
        assert_eq!(no_auth.2, "deny", "configured header also on 401");
        assert_eq!(
            probe(&c, &url, Some(("alice", "wrong")))
                .await
                .expect("wrong")
                .0,
            401
        );
        assert_eq!(
            probe(&c, &url, Some(("mallory", "s3cret")))
                .await
                .expect("user")
                .0,
            401
        );
        let ok = probe(&c, &url, Some(("alice", "s3cret")))
            .await
            .expect("ok");
        assert_eq!((ok.0, ok.2.as_str(), ok.3), (200, "deny", true));
        // Plain HTTP on the TLS port gets no HTTP answer.
        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));

        // Rotate the certificate (new CA): new connections use it without a restart.
        let ca2 = write_certs(dir.path(), "second");
        let c2 = client(&ca2);
        let rotated = probe(&c2, &url, Some(("alice", "s3cret")))
            .await
            .expect("rotated");
        assert_eq!(rotated.0, 200);
        assert!(
            client(&ca).get(&url).send().await.is_err(),
            "old CA must no longer verify"
        );
    });
    server.abort();

    // Bad files are refused at startup.
    for (name, text) in [
        (
            "plain.yml",
            "basic_auth_users:\n  bob: notahash\n".to_string(),
        ),
        (
            "unknown.yml",
            "tls_server_config:\n  certfile: x\n".to_string(),
        ),
        (
            "nokey.yml",
            "tls_server_config:\n  cert_file: cert.pem\n".to_string(),
        ),
        (
            "missing.yml",
            "tls_server_config:\n  cert_file: nope.pem\n  key_file: key.pem\n".to_string(),
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        let cli = Cli::parse_from([
            "ignis".to_string(),
            format!("--web.listen-address=127.0.0.1:{}", common::free_port()),
            format!("--web.config.file={}", p.display()),
        ]);
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), exporter::run(cli.args)).await
        });
        assert!(matches!(r, Ok(Err(_))), "{name} must be refused at startup");
    }

    // Same file, same requests against node_exporter 1.5.
    if !Path::new(NODE_EXPORTER).exists() {
        println!("SKIP: {NODE_EXPORTER} not installed; web config comparison not run");
        return;
    }
    let ne_port = common::free_port();
    let _ne = Killed(
        Command::new(NODE_EXPORTER)
            .arg(format!("--web.listen-address=127.0.0.1:{ne_port}"))
            .arg(format!("--web.config.file={}", web.display()))
            .args(["--collector.disable-defaults", "--collector.loadavg"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn node_exporter"),
    );
    let ca_now = write_certs(dir.path(), "third");
    let c = client(&ca_now);
    let ne_url = format!("https://127.0.0.1:{ne_port}/metrics");
    rt.block_on(async {
        wait_tls(&c, &ne_url).await;
        for auth in [None, Some(("alice", "wrong")), Some(("alice", "s3cret"))] {
            let ne = probe(&c, &ne_url, auth).await.expect("node_exporter");
            println!("node_exporter with {auth:?}: {ne:?}");
            let expected = if auth == Some(("alice", "s3cret")) {
                200
            } else {
                401
            };
            assert_eq!(ne.0, expected, "node_exporter answers as ignis does");
            assert_eq!(ne.2, "deny");
            if expected == 401 {
                assert_eq!(ne.1, "Basic");
            }
        }
    });
}
