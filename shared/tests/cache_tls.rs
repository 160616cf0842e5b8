//! The Redis adapter over TLS (`rediss://`, as ElastiCache Serverless requires), against a
//! real `redis-server` with a certificate from a test CA made here with the `openssl` CLI.
//! The client trusts the system roots (rustls-native-certs), which honour `SSL_CERT_FILE`:
//! this test binary points it at the test CA. A server whose certificate the client does not
//! trust is refused.

use std::{
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use snowcast::{adapters::redis::Redis, domain::forecast::TenantId, ports::cache::Generations};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("the openssl CLI");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA and a server certificate for localhost signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=snowcast-test-ca",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn start_tls_redis(dir: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
        ])
        .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"])
        .args(["--save", "", "--appendonly", "no"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server; scripts/setup installs it)");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

async fn answers(url: &str) -> bool {
    let redis = Redis::connect(url, false, Duration::from_millis(500)).unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if redis.bump(&tenant).await.is_ok() {
            return redis.current(&tenant).await.is_ok_and(|g| g.age.is_some());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[test]
fn rediss_connects_to_a_trusted_server_and_refuses_an_untrusted_one() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let (mut server, port) = start_tls_redis(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Not trusted yet: the system roots do not hold the test CA.
    let untrusted = dir.path().join("empty.pem");
    std::fs::write(&untrusted, "").unwrap();
    // SAFETY: set before any other thread of this test binary reads the environment (one
    // test, and the runtime is current-thread).
    unsafe { std::env::set_var("SSL_CERT_FILE", &untrusted) };
    assert!(!runtime.block_on(answers(&format!("rediss://localhost:{port}"))));

    // SAFETY: as above.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.path().join("ca.crt")) };
    assert!(runtime.block_on(answers(&format!("rediss://localhost:{port}"))));

    server.kill().unwrap();
    server.wait().unwrap();
}
