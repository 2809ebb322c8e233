//! Forward remotes through real `mux-tunnel server` and `client` processes
//! on 127.0.0.1: many connections with every byte checked in each mode,
//! half-close and reset crossing the tunnel, a refused target resetting
//! only its own connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod common;

use std::{io, time::Duration};

use common::{client, closed_port, echo_check, echo_server, server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
    time::timeout,
};

/// The bound on each test's traffic.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

const CONNECTIONS: u64 = 100;
const MIB: u64 = 1024 * 1024;

async fn many_connections(mode: &str) {
    let echo = echo_server().await;
    let (_server, url) = server(&[]).await;
    let remote = format!("0:{echo}");
    let (_client, addrs) = client(&["--mode", mode], &url, &[&remote]).await;
    let local = addrs[0];
    let started = std::time::Instant::now();
    let mut set = JoinSet::new();
    for seed in 0..CONNECTIONS {
        set.spawn(echo_check(local, seed, MIB));
    }
    timeout(TEST_TIMEOUT, async {
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
    })
    .await
    .expect("echoes finished in time");
    eprintln!(
        "{mode}: {CONNECTIONS} connections x 1 MiB echoed in {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connections_echo_1mib_each_connect() {
    many_connections("connect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connections_echo_1mib_each_post() {
    many_connections("post").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_connections_echo_1mib_each_upgrade() {
    many_connections("upgrade").await;
}

/// The target closes its write side first; the local client still sends,
/// then reads the target's whole answer and EOF.
#[tokio::test]
async fn half_close_crosses_both_ways() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let (_server, url) = server(&[]).await;
    let remote = format!("0:{target_addr}");
    let (_client, addrs) = client(&[], &url, &[&remote]).await;
    timeout(TEST_TIMEOUT, async {
        let mut local = TcpStream::connect(addrs[0]).await.unwrap();
        let (mut far, _) = target.accept().await.unwrap();
        // Target: says hello and closes its write side at once.
        far.write_all(b"hello").await.unwrap();
        far.shutdown().await.unwrap();
        let mut got = Vec::new();
        local.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        // The local side can still send, and its FIN arrives after.
        local.write_all(b"still here").await.unwrap();
        local.shutdown().await.unwrap();
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"still here");
    })
    .await
    .expect("in time");
}

/// A target that resets its connection resets the local one.
#[tokio::test]
async fn target_reset_resets_the_local_connection() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let (_server, url) = server(&[]).await;
    let remote = format!("0:{target_addr}");
    let (_client, addrs) = client(&[], &url, &[&remote]).await;
    timeout(TEST_TIMEOUT, async {
        let mut local = TcpStream::connect(addrs[0]).await.unwrap();
        let (far, _) = target.accept().await.unwrap();
        socket2::SockRef::from(&far)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(far);
        let mut buf = [0u8; 16];
        let err = local.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    })
    .await
    .expect("in time");
}

/// A local connection that resets makes the target's connection reset.
#[tokio::test]
async fn local_reset_resets_the_target_connection() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    let (_server, url) = server(&[]).await;
    let remote = format!("0:{target_addr}");
    let (_client, addrs) = client(&[], &url, &[&remote]).await;
    timeout(TEST_TIMEOUT, async {
        let local = TcpStream::connect(addrs[0]).await.unwrap();
        let (mut far, _) = target.accept().await.unwrap();
        socket2::SockRef::from(&local)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(local);
        let mut buf = [0u8; 16];
        let err = far.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    })
    .await
    .expect("in time");
}

/// A target nobody listens on resets that local connection only; the
/// tunnel goes on forwarding.
#[tokio::test]
async fn unreachable_target_resets_only_its_connection() {
    let echo = echo_server().await;
    let closed = closed_port().await;
    let (_server, url) = server(&[]).await;
    let dead = format!("0:127.0.0.1:{closed}");
    let alive = format!("0:{echo}");
    let (_client, addrs) = client(&[], &url, &[&dead, &alive]).await;
    timeout(TEST_TIMEOUT, async {
        let mut local = TcpStream::connect(addrs[0]).await.unwrap();
        let mut buf = [0u8; 16];
        let read = local.read(&mut buf).await;
        assert!(
            matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        echo_check(addrs[1], 1, 64 * 1024).await;
    })
    .await
    .expect("in time");
}
