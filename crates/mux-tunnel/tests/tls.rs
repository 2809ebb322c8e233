//! TLS: a self-signed server whose printed fingerprint the client pins,
//! PEM files, and a wrong fingerprint or an unverifiable certificate
//! failing closed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod common;

use std::time::Duration;

use common::{client, echo_check, echo_server, Proc};
use tokio::{task::JoinSet, time::timeout};

/// The bound on each test's traffic.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts a TLS server with `tls` flags; returns it, its https URL and the
/// fingerprint it printed.
async fn tls_server(tls: &[&str]) -> (Proc, String, String) {
    let mut args = vec!["server", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(tls);
    let mut server = Proc::start(&args);
    let fingerprint = server.line("fingerprint ").await;
    let addr = server.line("listening ").await;
    (server, format!("https://{addr}/"), fingerprint)
}

/// 100 connections × 1 MiB echoed over TLS (CONNECT), the client pinning
/// the self-signed certificate's fingerprint; then the upgrade mode (ALPN
/// http/1.1) over the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connections_over_tls_with_a_pinned_fingerprint() {
    let echo = echo_server().await;
    let (_server, url, fingerprint) = tls_server(&["--tls-self-signed"]).await;
    assert_eq!(fingerprint.len(), 64, "{fingerprint}");
    let remote = format!("0:{echo}");
    let (_client, addrs) = client(&["--fingerprint", &fingerprint], &url, &[&remote]).await;
    let started = std::time::Instant::now();
    let mut set = JoinSet::new();
    for seed in 0..100 {
        set.spawn(echo_check(addrs[0], seed, 1024 * 1024));
    }
    timeout(TEST_TIMEOUT, async {
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
    })
    .await
    .expect("echoes finished in time");
    eprintln!(
        "tls: 100 connections x 1 MiB echoed in {:?}",
        started.elapsed()
    );
    let (_upgrade, addrs) = client(
        &["--mode", "upgrade", "--fingerprint", &fingerprint],
        &url,
        &[&remote],
    )
    .await;
    timeout(TEST_TIMEOUT, echo_check(addrs[0], 7, 256 * 1024))
        .await
        .expect("in time");
}

/// A fingerprint that is not the server's, or none (webpki roots do not
/// know a self-signed certificate): exit 1 with a clear line, no retry.
#[tokio::test]
async fn wrong_fingerprint_or_unknown_issuer_fails_closed() {
    let echo = echo_server().await;
    let (_server, url, fingerprint) = tls_server(&["--tls-self-signed"]).await;
    let remote = format!("0:{echo}");
    let wrong = fingerprint.replace(|c: char| c != '0', "0");
    let mut pinned = Proc::start(&["client", "--fingerprint", &wrong, &url, &remote]);
    let (status, stderr) = pinned.exit_with_stderr().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the server's certificate has SHA-256 fingerprint {fingerprint}, not the --fingerprint {wrong}"
        )),
        "{stderr}"
    );
    let mut unpinned = Proc::start(&["client", &url, &remote]);
    let (status, stderr) = unpinned.exit_with_stderr().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("TLS handshake failed: invalid peer certificate"),
        "{stderr}"
    );
}

/// `--tls-cert` and `--tls-key` from PEM files; the printed fingerprint is
/// that of the certificate in the file.
#[tokio::test]
async fn certificate_and_key_from_pem_files() {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("mux-tunnel-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    let echo = echo_server().await;
    let (_server, url, fingerprint) = tls_server(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let remote = format!("0:{echo}");
    let (_client, addrs) = client(&["--fingerprint", &fingerprint], &url, &[&remote]).await;
    timeout(TEST_TIMEOUT, echo_check(addrs[0], 1, 64 * 1024))
        .await
        .expect("in time");
    let _ = std::fs::remove_dir_all(&dir);
}
