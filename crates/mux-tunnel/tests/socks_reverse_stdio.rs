//! SOCKS5, reverse and stdio remotes through real `mux-tunnel` processes
//! on 127.0.0.1, and what a server without `--socks` or `--reverse` says.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stderr
)]

mod common;

use std::{net::SocketAddr, process::Stdio, time::Duration};

use common::{echo_check, echo_server, server, Proc};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    process::Command,
    time::timeout,
};

const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A tiny HTTP/1.1 server: answers every request with `hello from mux`.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut reader = BufReader::new(tcp);
                let mut line = String::new();
                while reader.read_line(&mut line).await.unwrap_or(0) > 2 {
                    line.clear();
                }
                let body = "hello from mux\n";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut tcp = reader.into_inner();
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// Sends a SOCKS5 CONNECT for `target` (an address: `[1, ip..]` or
/// `[4, ip..]`, or a name: `[3, len, name..]`, then the port) and returns
/// the reply code and the connection.
async fn socks_connect(proxy: SocketAddr, target: &[u8]) -> (u8, TcpStream) {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(&[5, 1, 0]).await.unwrap();
    let mut method = [0u8; 2];
    tcp.read_exact(&mut method).await.unwrap();
    assert_eq!(method, [5, 0]);
    let mut request = vec![5, 1, 0];
    request.extend_from_slice(target);
    tcp.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply[0], 5);
    (reply[1], tcp)
}

fn ipv4_target(addr: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr}")
    };
    let mut target = vec![1];
    target.extend_from_slice(&v4.ip().octets());
    target.extend_from_slice(&v4.port().to_be_bytes());
    target
}

async fn socks_client(url: &str) -> (Proc, SocketAddr) {
    let mut client = Proc::start(&["client", url, "0:socks"]);
    let addr = client.line("socks ").await.parse().unwrap();
    client.line("connected").await;
    (client, addr)
}

#[tokio::test]
async fn socks5_connects_by_ipv4_and_by_name() {
    let echo = echo_server().await;
    let (_server, url) = server(&["--socks"]).await;
    let (_client, proxy) = socks_client(&url).await;
    timeout(TEST_TIMEOUT, async {
        let (code, mut tcp) = socks_connect(proxy, &ipv4_target(echo)).await;
        assert_eq!(code, 0);
        tcp.write_all(b"ping").await.unwrap();
        tcp.shutdown().await.unwrap();
        let mut got = Vec::new();
        tcp.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");

        let mut by_name = vec![3, 9];
        by_name.extend_from_slice(b"localhost");
        by_name.extend_from_slice(&echo.port().to_be_bytes());
        let (code, _tcp) = socks_connect(proxy, &by_name).await;
        assert_eq!(code, 0);

        // A closed port: "connection refused" (5).
        let closed = common::closed_port().await;
        let target = ipv4_target(SocketAddr::from(([127, 0, 0, 1], closed)));
        let (code, _tcp) = socks_connect(proxy, &target).await;
        assert_eq!(code, 5);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn socks5_over_ipv6_when_the_host_has_it() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback; skipped");
        return;
    };
    let target_addr = listener.local_addr().unwrap();
    let (_server, url) = server(&["--socks"]).await;
    let (_client, proxy) = socks_client(&url).await;
    timeout(TEST_TIMEOUT, async {
        let SocketAddr::V6(v6) = target_addr else {
            unreachable!()
        };
        let mut target = vec![4];
        target.extend_from_slice(&v6.ip().octets());
        target.extend_from_slice(&v6.port().to_be_bytes());
        let (code, _tcp) = socks_connect(proxy, &target).await;
        assert_eq!(code, 0);
        listener.accept().await.unwrap();
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn socks5_is_refused_without_server_socks() {
    let echo = echo_server().await;
    let (_server, url) = server(&[]).await;
    let (_client, proxy) = socks_client(&url).await;
    timeout(TEST_TIMEOUT, async {
        let (code, _tcp) = socks_connect(proxy, &ipv4_target(echo)).await;
        assert_eq!(code, 2, "connection not allowed by ruleset");
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn curl_fetches_a_page_through_socks5_hostname() {
    if std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        // `.ci/run` installs curl, so in CI its absence is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "curl is needed in CI (Debian's curl package)"
        );
        eprintln!("curl not installed; skipped");
        return;
    }
    let web = http_server().await;
    let (_server, url) = server(&["--socks"]).await;
    let (_client, proxy) = socks_client(&url).await;
    let output = timeout(
        TEST_TIMEOUT,
        Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10"])
            .arg("--socks5-hostname")
            .arg(proxy.to_string())
            .arg(format!("http://localhost:{}/", web.port()))
            .output(),
    )
    .await
    .expect("curl in time")
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"hello from mux\n");
}

#[tokio::test]
async fn reverse_remote_listens_on_the_server() {
    let echo = echo_server().await;
    let (_server, url) = server(&["--reverse"]).await;
    let remote = format!("R:127.0.0.1:0:{echo}");
    let mut client = Proc::start(&["client", &url, &remote]);
    let line = client.line("reverse ").await;
    client.line("connected").await;
    let on_server: SocketAddr = line.split_whitespace().next().unwrap().parse().unwrap();
    timeout(TEST_TIMEOUT, async {
        let mut set = tokio::task::JoinSet::new();
        for seed in 0..10 {
            set.spawn(echo_check(on_server, seed, 256 * 1024));
        }
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
    })
    .await
    .expect("in time");
    // The listener lives as long as the client's tunnel.
    client.kill().await;
    timeout(TEST_TIMEOUT, async {
        loop {
            if TcpStream::connect(on_server).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the reverse listener closes with the tunnel");
}

#[tokio::test]
async fn reverse_remote_is_refused_without_server_reverse() {
    let (_server, url) = server(&[]).await;
    let mut client = Proc::start(&["client", &url, "R:0:127.0.0.1:22"]);
    let (status, stderr) = client.exit_with_stderr().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the server does not allow reverse remotes (start it with --reverse)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn stdio_remote_is_one_connection() {
    let echo = echo_server().await;
    let (_server, url) = server(&[]).await;
    let remote = format!("stdio:{echo}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mux-tunnel"))
        .args(["client", &url, &remote])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    timeout(TEST_TIMEOUT, async move {
        let writer = tokio::spawn(async move {
            stdin.write_all(&payload).await.unwrap();
            drop(stdin);
        });
        let mut got = Vec::new();
        stdout.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got == expected, "echo differs ({} bytes)", got.len());
        let status = child.wait().await.unwrap();
        assert!(status.success(), "{status}");
    })
    .await
    .expect("in time");
}

/// One client, one tunnel: a forward and a SOCKS5 listener side by side.
#[tokio::test]
async fn forward_and_socks_share_one_tunnel() {
    let echo = echo_server().await;
    let (_server, url) = server(&["--socks"]).await;
    let remote = format!("0:{echo}");
    let mut client = Proc::start(&["client", &url, &remote, "0:socks"]);
    let forward: SocketAddr = client
        .line("forward ")
        .await
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy: SocketAddr = client.line("socks ").await.parse().unwrap();
    client.line("connected").await;
    timeout(TEST_TIMEOUT, async {
        echo_check(forward, 3, 4096).await;
        let (code, _tcp) = socks_connect(proxy, &ipv4_target(echo)).await;
        assert_eq!(code, 0);
    })
    .await
    .expect("in time");
}
