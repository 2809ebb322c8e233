//! The client outlives its server: it reconnects with backoff after the
//! server goes away, re-registers its reverse remotes, notices a silent
//! server by keepalive, and gives up after `--max-retry-count`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::{net::SocketAddr, time::Duration};

use common::{echo_check, echo_server, server, Proc};
use tokio::{net::TcpListener, sync::watch, time::timeout};

fn first_addr(line: &str) -> SocketAddr {
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn server_restart_client_reconnects_and_reregisters_reverse() {
    let echo = echo_server().await;
    let (mut first, url) = server(&["--reverse"]).await;
    let listen = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let forward = format!("0:{echo}");
    let reverse = format!("R:127.0.0.1:0:{echo}");
    let mut client = Proc::start(&["client", &url, &forward, &reverse]);
    let local = first_addr(&client.line("forward ").await);
    let on_server = first_addr(&client.line("reverse ").await);
    client.line("connected").await;
    echo_check(local, 1, 64 * 1024).await;
    echo_check(on_server, 2, 64 * 1024).await;

    first.kill().await;
    let mut second = Proc::start(&["server", "--reverse", "--listen", &listen]);
    second.line("listening ").await;
    let on_server = first_addr(&client.line("reverse ").await);
    client.line("connected").await;
    echo_check(local, 3, 64 * 1024).await;
    echo_check(on_server, 4, 64 * 1024).await;
}

/// A relay whose connections can be frozen: the bytes stop, the sockets
/// stay open, as with a peer that vanished without a packet. Connections
/// accepted after the freeze pass.
async fn freezable_relay(to: SocketAddr) -> (SocketAddr, watch::Sender<u32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (freeze, frozen) = watch::channel(0u32);
    tokio::spawn(async move {
        while let Ok((mut a, _)) = listener.accept().await {
            let mut frozen = frozen.clone();
            frozen.borrow_and_update();
            tokio::spawn(async move {
                let mut b = tokio::net::TcpStream::connect(to).await.unwrap();
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                    _ = frozen.changed() => std::future::pending::<()>().await,
                }
            });
        }
    });
    (addr, freeze)
}

#[tokio::test]
async fn keepalive_notices_a_silent_server_and_reconnects() {
    let echo = echo_server().await;
    let (_server, url) = server(&["--keepalive", "0"]).await;
    let server_addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let (relay, freeze) = freezable_relay(server_addr).await;
    let relay_url = format!("http://{relay}/");
    let forward = format!("0:{echo}");
    let mut client = Proc::start(&["client", "--keepalive", "1s", &relay_url, &forward]);
    let local = first_addr(&client.line("forward ").await);
    client.line("connected").await;
    let started = std::time::Instant::now();
    freeze.send_replace(1);
    client.line("connected").await;
    let noticed = started.elapsed();
    assert!(noticed < Duration::from_secs(5), "{noticed:?}");
    echo_check(local, 1, 64 * 1024).await;
}

#[tokio::test]
async fn gives_up_after_max_retry_count() {
    let (mut server, url) = server(&[]).await;
    let mut client = Proc::start(&[
        "client",
        "--max-retry-count",
        "2",
        "--max-retry-interval",
        "50ms",
        &url,
        "0:127.0.0.1:9",
    ]);
    client.line("connected").await;
    server.kill().await;
    let (status, stderr) = timeout(Duration::from_secs(10), client.exit_with_stderr())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tunnel lost; reconnecting"), "{stderr}");
    assert!(
        stderr.contains("mux-tunnel: error:") && stderr.contains("cannot open the tunnel"),
        "{stderr}"
    );
}

#[tokio::test]
async fn unreachable_server_is_one_error_with_max_retry_count_0() {
    let closed = common::closed_port().await;
    let url = format!("http://127.0.0.1:{closed}/");
    let mut client = Proc::start(&["client", "--max-retry-count", "0", &url, "0:127.0.0.1:9"]);
    let (status, stderr) = client.exit_with_stderr().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect to 127.0.0.1:"), "{stderr}");
}
