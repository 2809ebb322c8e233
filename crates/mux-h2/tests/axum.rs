//! `accept` inside an axum router served by `axum::serve` on 127.0.0.1:0:
//! axum hands handlers its own body type, so this checks every tunnel mode
//! through it, and that a POST reset keeps its code through axum's body
//! errors.
// Test helpers outside `#[test]` fns panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use axum::{extract::Request, response::IntoResponse, routing::any, Router};
use common::{open, random_bytes, round_trip, MODES};
use mux_core::StreamError;
use mux_h2::{Connector, H2Conn, H2ConnExt, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Every test must finish within this.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `/tunnel` (and the fallback, for plain CONNECT) with `handler`
/// run on each tunnel; returns the tunnel URL.
async fn start_axum<F, Fut>(handler: F) -> String
where
    F: Fn(H2Conn) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let tunnel = move |req: Request| {
        let handler = handler.clone();
        async move {
            match mux_h2::accept(req) {
                Ok((response, conn)) => {
                    tokio::spawn(handler(conn));
                    response.into_response()
                }
                Err(refused) => refused.to_response().into_response(),
            }
        }
    };
    let app: Router = Router::new()
        .route("/tunnel", any(tunnel.clone()))
        .fallback(tunnel);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/tunnel")
}

#[tokio::test]
async fn axum_router_carries_every_mode() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let url = start_axum(common::echo).await;
        for (mode, name) in MODES {
            let data = random_bytes(256 * 1024, 31);
            let conn = open(&url, mode).await;
            let echoed = round_trip(conn, &data).await;
            assert!(echoed == data, "{name}: echo through axum differs");
        }
        // Extended CONNECT carries the path, so it reaches `/tunnel`.
        let (conn, _) = Connector::new()
            .extended_connect("mux-tunnel")
            .connect(url.as_str())
            .await
            .unwrap();
        assert_eq!(round_trip(conn, b"extended").await, b"extended");
    })
    .await
    .expect("did not finish in time");
}

#[tokio::test]
async fn axum_post_reset_keeps_its_code() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let url = start_axum(move |mut conn: H2Conn| {
            let tx = tx.clone();
            async move {
                let mut got = Vec::new();
                let _ = tx.send(conn.read_to_end(&mut got).await);
            }
        })
        .await;
        let mut conn = open(&url, Mode::Post).await;
        conn.write_all(b"partial").await.unwrap();
        conn.flush().await.unwrap();
        conn.reset_with(0x4321);
        let err = rx.recv().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert!(
            matches!(
                StreamError::from_io(&err),
                Some(StreamError::Reset {
                    code: 0x4321,
                    remote: true
                })
            ),
            "{err:?}"
        );
    })
    .await
    .expect("did not finish in time");
}

#[tokio::test]
async fn axum_refuses_plain_http1_with_426() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let url = start_axum(common::echo).await;
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/tunnel")
            .to_owned();
        let mut tcp = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
        let request =
            format!("POST /tunnel HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with("HTTP/1.1 426"),
            "{}",
            response.lines().next().unwrap_or_default()
        );
    })
    .await
    .expect("did not finish in time");
}
