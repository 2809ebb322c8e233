//! Helpers shared by the integration tests: a real server on 127.0.0.1:0 and
//! deterministic random data.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;

use mux_h2::{Connector, H2Conn, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every mode a client can open a tunnel with, and a name for messages.
pub const MODES: [(Mode, &str); 3] = [
    (Mode::Connect, "CONNECT"),
    (Mode::Post, "POST"),
    (Mode::Http1Upgrade, "HTTP/1.1 upgrade"),
];

/// Starts `mux_h2::serve` on 127.0.0.1:0 and returns its base URL.
pub async fn start<F, Fut>(handler: F) -> (String, SocketAddr)
where
    F: Fn(H2Conn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mux_h2::serve(listener, handler));
    (format!("http://{addr}/tunnel"), addr)
}

/// Accepts every TCP connection on 127.0.0.1:0 and hands each to `serve`
/// in a task of its own, for servers built from lower-level parts than
/// `mux_h2::serve`; returns the base URL.
pub async fn start_raw<F, Fut>(serve: F) -> String
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(tcp));
        }
    });
    format!("http://{addr}/tunnel")
}

/// Echoes everything, then half-closes.
pub async fn echo(conn: H2Conn) {
    let (mut rx, mut tx) = tokio::io::split(conn);
    let _ = tokio::io::copy(&mut rx, &mut tx).await;
    let _ = tx.shutdown().await;
}

/// `len` bytes from a seeded generator, so a failure reproduces.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut data = vec![0u8; len];
    rng.fill(&mut data);
    data
}

/// Opens a tunnel in `mode`.
pub async fn open(url: &str, mode: Mode) -> H2Conn {
    let (conn, parts) = Connector::new()
        .mode(mode)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: connect failed: {e}"));
    let expected = if mode == Mode::Http1Upgrade { 101 } else { 200 };
    assert_eq!(parts.status, expected, "{mode:?}");
    conn
}

/// Writes `data` and reads back as many bytes concurrently: both directions
/// move at once, which a half-duplex transport would deadlock on once the
/// echo fills the buffers.
pub async fn round_trip(conn: H2Conn, data: &[u8]) -> Vec<u8> {
    let (mut rx, mut tx) = tokio::io::split(conn);
    let len = data.len();
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(64 * 1024) {
            tx.write_all(chunk).await.unwrap();
        }
        tx.shutdown().await.unwrap();
        tx
    });
    let mut got = Vec::with_capacity(len);
    rx.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    got
}
