//! TLS on both listeners (issue #11), with certificates made by the `openssl` command line tool
//! and checked by two other TLS stacks (tonic's rustls client and `curl`): reads open to
//! anyone, Submit only with a client certificate from the publishers' CA, certificates
//! reloaded on SIGHUP, and plaintext refused on a non-loopback address unless asked for.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Publisher, TestServer};
use glasslog::admission::keys::KeyType;
use glasslog::proto;
use glasslog::proto::transparency_log_client::TransparencyLogClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`, `NAME-ca.key`) in `dir`.
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
}

/// A leaf (`LEAF.pem`, `LEAF.key`) signed by CA `ca`, for `usage` (serverAuth or clientAuth).
fn leaf(dir: &Path, ca: &str, leaf: &str, usage: &str) {
    std::fs::write(
        dir.join(format!("{leaf}.ext")),
        format!("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={leaf}"),
            "-keyout",
            &format!("{leaf}.key"),
            "-out",
            &format!("{leaf}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{leaf}.csr"),
            "-days",
            "2",
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-extfile",
            &format!("{leaf}.ext"),
            "-out",
            &format!("{leaf}.pem"),
        ],
    );
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap()
}

/// A TLS channel to `port` trusting CA `ca`, with the client certificate `client` if given.
async fn channel(
    dir: &Path,
    port: u16,
    ca: &str,
    client: Option<&str>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(dir, &format!("{ca}-ca.pem"))))
        .domain_name("localhost");
    if let Some(c) = client {
        tls = tls.identity(Identity::from_pem(
            read(dir, &format!("{c}.pem")),
            read(dir, &format!("{c}.key")),
        ));
    }
    Endpoint::from_shared(format!("https://127.0.0.1:{port}"))?
        .tls_config(tls)?
        .connect()
        .await
}

fn port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listeners_authenticate_publishers_and_reload_on_sighup() {
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path();
    ca(c, "one");
    ca(c, "two");
    leaf(c, "one", "server-one", "serverAuth");
    leaf(c, "two", "server-two", "serverAuth");
    leaf(c, "one", "publisher", "clientAuth");
    std::fs::copy(c.join("server-one.pem"), c.join("cert.pem")).unwrap();
    std::fs::copy(c.join("server-one.key"), c.join("key.pem")).unwrap();
    let path = |f: &str| -> String { c.join(f).to_str().unwrap().to_string() };

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &[
            "--tls-cert",
            &path("cert.pem"),
            "--tls-key",
            &path("key.pem"),
            "--tls-client-ca",
            &path("one-ca.pem"),
            "--http-listen",
            "127.0.0.1:0",
        ],
    );
    let grpc_port = port(&server.url);

    // Reads need no client certificate; Submit does.
    let anonymous = channel(c, grpc_port, "one", None).await.unwrap();
    let mut rpc = TransparencyLogClient::new(anonymous);
    rpc.get_checkpoint(proto::GetCheckpointRequest::default())
        .await
        .unwrap();
    let publisher = Publisher::new(KeyType::Ed25519);
    let request = || proto::SubmitRequest {
        envelope: publisher.envelope("over TLS"),
        public_keys: vec![publisher.pem.clone()],
    };
    let refused = rpc.submit(request()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let authenticated = channel(c, grpc_port, "one", Some("publisher"))
        .await
        .unwrap();
    let reply = TransparencyLogClient::new(authenticated)
        .submit(request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.index, 0);

    // `glasslog submit` presents a client certificate when given one, and says what is missing
    // when not. The CA that signed the server's certificate is trusted through SSL_CERT_FILE.
    let work = tempfile::tempdir().unwrap();
    let w = |f: &str| work.path().join(f).to_str().unwrap().to_string();
    std::fs::create_dir(w("files")).unwrap();
    std::fs::write(w("files/train.jsonl"), "{\"text\": \"tls\"}\n").unwrap();
    let cli = |args: &[&str]| {
        Command::new(common::glasslog_bin())
            .args(args)
            .env("SSL_CERT_FILE", path("one-ca.pem"))
            .env("XDG_CONFIG_HOME", w("config"))
            .env("GLASSLOG_LOG", "off")
            .output()
            .unwrap()
    };
    let ran = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ran(cli(&[
        "keygen",
        "--out",
        &w("publisher.key"),
        "--type",
        "ed25519",
    ]));
    ran(cli(&[
        "declare",
        "dataset",
        &w("files"),
        "--name",
        "example-org/tls-data",
        "--version",
        "1",
        "--license",
        "CC0-1.0",
        "--source",
        "synthetic:Generated",
        "--processing",
        "none",
        "--contains-personal-data",
        "no",
        "--personal-data-handling",
        "none collected",
        "--key",
        &w("publisher.key"),
        "--out",
        &w("d.json"),
    ]));
    let https = format!("https://localhost:{grpc_port}");
    let submit = |extra: &[&str]| {
        let declaration = w("d.json");
        let mut args = vec!["submit", &declaration, "--server", &https, "--log-key"];
        args.push(&server.verifier_key);
        args.extend(extra);
        cli(&args)
    };
    let refused = submit(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--tls-client-cert"), "{stderr}");
    ran(submit(&[
        "--tls-client-cert",
        &path("publisher.pem"),
        "--tls-client-key",
        &path("publisher.key"),
    ]));

    // Plaintext to a TLS listener gets no answer.
    let plain = Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert!(TransparencyLogClient::new(ch)
            .get_checkpoint(proto::GetCheckpointRequest::default())
            .await
            .is_err());
    }

    // The HTTP listener, read by curl over TLS.
    let http_port = port(server.http_url.as_ref().unwrap());
    let curl = |ca: &str| {
        Command::new("curl")
            .args(["-sS", "--fail", "--cacert", &path(&format!("{ca}-ca.pem"))])
            .arg(format!("https://localhost:{http_port}/checkpoint"))
            .output()
            .unwrap()
    };
    let out = curl("one");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(&server.origin));

    // New certificates from another CA, then SIGHUP: new connections see them.
    std::fs::copy(c.join("server-two.pem"), c.join("cert.pem")).unwrap();
    std::fs::copy(c.join("server-two.key"), c.join("key.pem")).unwrap();
    assert!(
        channel(c, grpc_port, "one", None).await.is_ok(),
        "not reloaded before SIGHUP"
    );
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ch = channel(c, grpc_port, "two", None).await;
        if let Ok(ch) = ch {
            if TransparencyLogClient::new(ch)
                .get_checkpoint(proto::GetCheckpointRequest::default())
                .await
                .is_ok()
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old = channel(c, grpc_port, "one", None).await;
    let old_works = match old {
        Ok(ch) => TransparencyLogClient::new(ch)
            .get_checkpoint(proto::GetCheckpointRequest::default())
            .await
            .is_ok(),
        Err(_) => false,
    };
    assert!(!old_works, "the old certificate is still served");
    assert!(curl("two").status.success());

    // A broken reload keeps the certificates in use.
    std::fs::write(c.join("key.pem"), b"not a key").unwrap();
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        curl("two").status.success(),
        "a failed reload took TLS down"
    );
}

#[test]
fn plaintext_on_a_public_address_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        let mut cmd = Command::new(common::glasslog_bin());
        cmd.args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path())
            .args(extra);
        cmd
    };
    let out = serve(&[]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address")
            && err.contains("--plaintext")
            && err.contains("--tls-cert"),
        "{err}"
    );
    assert!(
        !dir.path().join("db").exists(),
        "nothing is created for a refused configuration"
    );
    let mut cmd = serve(&["--plaintext"]);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GLASSLOG_LOG", "warn");
    let mut server =
        TestServer::try_start_cmd(cmd, dir.path()).expect("--plaintext serves on 0.0.0.0");
    server.kill();
}
