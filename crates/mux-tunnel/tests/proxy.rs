//! `--proxy`: the client reaches the server through an HTTP CONNECT proxy
//! (a small one written here), in every mode and over TLS; the proxy
//! counts the tunnels it carried.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use common::{client, echo_check, echo_server, server, Proc};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
    time::timeout,
};

/// The bound on each test's traffic.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A CONNECT proxy on 127.0.0.1: its address, the number of tunnels it
/// opened, and the request heads it received. With `require`, a request
/// without that `Proxy-Authorization` value gets 407.
struct TestProxy {
    addr: SocketAddr,
    tunnels: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn test_proxy(require: Option<&'static str>) -> TestProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, log) = (tunnels.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(proxy_one(tcp, require, count.clone(), log.clone()));
        }
    });
    TestProxy {
        addr,
        tunnels,
        heads,
    }
}

async fn proxy_one(
    mut tcp: TcpStream,
    require: Option<&'static str>,
    tunnels: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    // The request head, up to the blank line; anything after it is the
    // client's first bytes for the target.
    let mut buf = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 1024];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "EOF in the request head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    heads.lock().unwrap().push(head.clone());
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    if let Some(value) = require {
        let wanted = format!("proxy-authorization: {value}\r\n");
        if !head
            .to_ascii_lowercase()
            .contains(&wanted.to_ascii_lowercase())
        {
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
                )
                .await;
            return;
        }
    }
    let mut upstream = TcpStream::connect(target.as_str()).await.unwrap();
    tunnels.fetch_add(1, Ordering::SeqCst);
    tcp.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .unwrap();
    upstream.write_all(&buf[end..]).await.unwrap();
    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut upstream).await;
}

/// Ten connections of 256 KiB echoed through a client whose tunnel goes
/// through the proxy.
async fn echo_through(proxy: &TestProxy, options: &[&str], url: &str) -> Proc {
    let echo = echo_server().await;
    let remote = format!("0:{echo}");
    let proxy_url = format!("http://{}", proxy.addr);
    let mut all = vec!["--proxy", proxy_url.as_str()];
    all.extend_from_slice(options);
    let (client, addrs) = client(&all, url, &[&remote]).await;
    let mut set = JoinSet::new();
    for seed in 0..10 {
        set.spawn(echo_check(addrs[0], seed, 256 * 1024));
    }
    timeout(TEST_TIMEOUT, async {
        while let Some(done) = set.join_next().await {
            done.unwrap();
        }
    })
    .await
    .expect("echoes finished in time");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_through_a_connect_proxy_in_every_mode() {
    let proxy = test_proxy(None).await;
    let (_server, url) = server(&[]).await;
    let server_authority = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    for (i, mode) in ["connect", "post", "upgrade"].into_iter().enumerate() {
        let _client = echo_through(&proxy, &["--mode", mode], &url).await;
        assert_eq!(proxy.tunnels.load(Ordering::SeqCst), i + 1, "{mode}");
    }
    for head in proxy.heads.lock().unwrap().iter() {
        assert!(
            head.starts_with(&format!("CONNECT {server_authority} HTTP/1.1\r\n")),
            "{head}"
        );
    }
}

/// TLS runs end to end through the proxy (the client pins the server's
/// certificate); the proxy's credentials come from the proxy URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_through_a_proxy_that_wants_credentials() {
    // base64("u:p")
    let proxy = test_proxy(Some("Basic dTpw")).await;
    let mut tls_server = Proc::start(&["server", "--listen", "127.0.0.1:0", "--tls-self-signed"]);
    let fingerprint = tls_server.line("fingerprint ").await;
    let addr = tls_server.line("listening ").await;
    let url = format!("https://{addr}/");
    // Without credentials: 407, exit 1, no retry.
    let proxy_url = format!("http://{}", proxy.addr);
    let mut refused = Proc::start(&["client", "--proxy", &proxy_url, &url, "0:127.0.0.1:9"]);
    let (status, stderr) = refused.exit_with_stderr().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("with HTTP 407"), "{stderr}");
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 0);
    // With them, through the proxy.
    let echo = echo_server().await;
    let remote = format!("0:{echo}");
    let proxy_url = format!("http://u:p@{}", proxy.addr);
    let (_client, addrs) = client(
        &["--proxy", &proxy_url, "--fingerprint", &fingerprint],
        &url,
        &[&remote],
    )
    .await;
    timeout(TEST_TIMEOUT, echo_check(addrs[0], 3, 256 * 1024))
        .await
        .expect("in time");
    assert_eq!(proxy.tunnels.load(Ordering::SeqCst), 1);
}
