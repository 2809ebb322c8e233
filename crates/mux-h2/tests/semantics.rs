//! Refusals, half-close, reset, backpressure and deadlines, against a real
//! hyper server on 127.0.0.1:0.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod common;

use std::convert::Infallible;
use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use common::{open, start, start_raw, MODES};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mux_core::StreamError;
use mux_h2::{ConnectError, Connector, H2Conn, H2ConnExt, Mode, DEFAULT_RESET_CODE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A plain hyper server (HTTP/1.1 + HTTP/2) answering every request with
/// `status` and no upgrade.
async fn start_refusing(status: StatusCode) -> String {
    start_raw(move |tcp| async move {
        let service = hyper::service::service_fn(move |_req: Request<_>| async move {
            let mut response = Response::new(Full::new(Bytes::from_static(b"no\n")));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        });
        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(tcp), service)
            .await;
    })
    .await
}

#[tokio::test]
async fn refusal_status_becomes_typed_error() {
    let url = start_refusing(StatusCode::FORBIDDEN).await;
    for (mode, name) in MODES {
        let err = Connector::new()
            .mode(mode)
            .connect(url.as_str())
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::FORBIDDEN), "{name}: {err}");
        assert!(matches!(err, ConnectError::Status { .. }), "{name}");
        assert_eq!(
            std::io::Error::from(err).kind(),
            ErrorKind::ConnectionRefused
        );
    }
}

/// An upgrade answered with 200 instead of 101 did not switch protocols.
#[tokio::test]
async fn upgrade_answered_without_101_is_an_error() {
    let url = start_refusing(StatusCode::OK).await;
    let err = Connector::new()
        .mode(Mode::Http1Upgrade)
        .connect(url.as_str())
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::OK), "{err}");
}

#[tokio::test]
async fn bad_urls_are_rejected_before_dialling() {
    let err = mux_h2::connect("ftp://127.0.0.1/")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ConnectError::UnsupportedScheme(_)), "{err}");
    let err = mux_h2::connect("/just/a/path")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl(_)), "{err}");
    let err = mux_h2::connect("http://exa mple/")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ConnectError::InvalidUrl(_)), "{err}");
    #[cfg(not(feature = "tls"))]
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let err = mux_h2::connect(url.as_str()).await.map(|_| ()).unwrap_err();
        assert!(matches!(err, ConnectError::TlsNotEnabled), "{err}");
    }
}

/// Sends one HTTP/1.x request to a `mux_h2::serve` server, no upgrade.
async fn plain_http1_request(version: http::Version) -> (StatusCode, http::HeaderMap, String) {
    let (url, addr) = start(|_conn| async {}).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method("POST")
        .uri("/tunnel")
        .version(version)
        .header(
            "host",
            url.trim_start_matches("http://")
                .trim_end_matches("/tunnel"),
        )
        .body(Full::new(Bytes::from_static(b"body")))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn http1_without_upgrade_gets_426() {
    let (status, headers, body) = plain_http1_request(http::Version::HTTP_11).await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(headers["upgrade"], mux_h2::UPGRADE_PROTOCOL);
    assert!(body.contains("Upgrade: mux-tunnel"), "{body}");
}

#[tokio::test]
async fn http10_gets_505() {
    let (status, _, body) = plain_http1_request(http::Version::HTTP_10).await;
    assert_eq!(status, StatusCode::HTTP_VERSION_NOT_SUPPORTED);
    assert!(body.contains("HTTP/1.0"), "{body}");
}

/// `accept` answers a bad request with an error and never blocks, even
/// without a server around it.
#[test]
fn accept_error_responses() {
    let err = mux_h2::AcceptError::UpgradeRequired;
    let response = err.to_response();
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(response.headers()["connection"], "upgrade");
    let err = mux_h2::AcceptError::VersionNotSupported(http::Version::HTTP_10);
    assert_eq!(
        err.to_response().status(),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED
    );
    assert_eq!(std::io::Error::from(err).kind(), ErrorKind::Unsupported);
}

/// Client shuts down first: the server reads EOF and still answers.
#[tokio::test]
async fn client_half_close_server_still_writes() {
    let (url, _) = start(|mut conn: H2Conn| async move {
        let mut request = Vec::new();
        conn.read_to_end(&mut request).await.unwrap();
        conn.write_all(b"reply to ").await.unwrap();
        conn.write_all(&request).await.unwrap();
        conn.shutdown().await.unwrap();
    })
    .await;
    for (mode, name) in MODES {
        let mut conn = open(&url, mode).await;
        conn.write_all(name.as_bytes()).await.unwrap();
        conn.shutdown().await.unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, format!("reply to {name}").as_bytes(), "{name}");
        let err = conn.write_all(b"x").await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BrokenPipe,
            "{name}: write after shutdown"
        );
    }
}

/// Server shuts down first: the client reads EOF and can still send.
#[tokio::test]
async fn server_half_close_client_still_writes() {
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel();
    let (url, _) = start(move |mut conn: H2Conn| {
        let got_tx = got_tx.clone();
        async move {
            conn.write_all(b"greeting").await.unwrap();
            conn.shutdown().await.unwrap();
            let mut rest = Vec::new();
            conn.read_to_end(&mut rest).await.unwrap();
            got_tx.send(rest).unwrap();
        }
    })
    .await;
    for (mode, name) in MODES {
        let mut conn = open(&url, mode).await;
        let mut greeting = Vec::new();
        conn.read_to_end(&mut greeting).await.unwrap();
        assert_eq!(greeting, b"greeting", "{name}");
        conn.write_all(b"after the server's EOF").await.unwrap();
        conn.shutdown().await.unwrap();
        assert_eq!(
            got_rx.recv().await.unwrap(),
            b"after the server's EOF",
            "{name}"
        );
    }
}

fn assert_reset(err: &std::io::Error, remote: bool, code: Option<u32>, what: &str) {
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{what}: {err}");
    match StreamError::from_io(err) {
        Some(StreamError::Reset { code: c, remote: r }) => {
            assert_eq!(*r, remote, "{what}: remote flag");
            if let Some(code) = code {
                assert_eq!(*c, code, "{what}: code");
            }
        }
        other => panic!("{what}: expected a reset, got {other:?} ({err})"),
    }
}

/// A server that reads until the first error and reports it.
async fn start_reading_server() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<std::io::Result<Vec<u8>>>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (url, _) = start(move |mut conn: H2Conn| {
        let tx = tx.clone();
        async move {
            let mut got = Vec::new();
            let result = conn.read_to_end(&mut got).await.map(|_| got);
            let _ = tx.send(result);
        }
    })
    .await;
    (url, rx)
}

#[tokio::test]
async fn post_client_reset_fails_server_read_with_connection_reset() {
    let (url, mut results) = start_reading_server().await;
    for code in [DEFAULT_RESET_CODE, 0x1234] {
        let mut conn = open(&url, Mode::Post).await;
        conn.write_all(b"partial").await.unwrap();
        conn.flush().await.unwrap();
        conn.reset_with(code);
        let err = results.recv().await.unwrap().unwrap_err();
        assert_reset(&err, true, Some(code), "server read");
        // This side fails too, and says who reset.
        let err = conn.read(&mut [0u8; 8]).await.unwrap_err();
        assert_reset(&err, false, Some(code), "client read after reset");
        let err = conn.write(b"more").await.unwrap_err();
        assert_reset(&err, false, Some(code), "client write after reset");
    }
}

#[tokio::test]
async fn post_server_reset_fails_client_read_with_connection_reset() {
    let (url, _) = start(|mut conn: H2Conn| async move {
        let mut go = [0u8; 2];
        conn.read_exact(&mut go).await.unwrap();
        conn.write_all(b"bye").await.unwrap();
        conn.flush().await.unwrap();
        conn.reset();
    })
    .await;
    let mut conn = open(&url, Mode::Post).await;
    conn.write_all(b"go").await.unwrap();
    let mut got = Vec::new();
    let err = conn.read_to_end(&mut got).await.unwrap_err();
    assert_reset(&err, true, Some(DEFAULT_RESET_CODE), "client read");
}

/// hyper gives a CONNECT stream no reset: the documented outcome is that
/// the peer's reads end (EOF) and its writes fail with `ConnectionReset`.
#[tokio::test]
async fn connect_client_reset_ends_server_read_and_fails_its_writes() {
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let (url, _) = start(move |mut conn: H2Conn| {
        let done_tx = done_tx.clone();
        async move {
            let mut got = Vec::new();
            let read = conn.read_to_end(&mut got).await.map(|_| got);
            // Writes fail once the stream is gone; bounded so a regression
            // fails the test rather than hanging it.
            let mut write_err = None;
            for _ in 0..1000 {
                if let Err(e) = conn.write_all(&[0u8; 1024]).await {
                    write_err = Some(e);
                    break;
                }
                tokio::task::yield_now().await;
            }
            let _ = done_tx.send((read, write_err));
        }
    })
    .await;
    let mut conn = open(&url, Mode::Connect).await;
    conn.write_all(b"partial").await.unwrap();
    conn.flush().await.unwrap();
    conn.reset();
    let (read, write_err) = done_rx.recv().await.unwrap();
    // A reset discards what was in flight; whatever arrived is a prefix.
    let read = read.unwrap();
    assert!(b"partial".starts_with(&read), "{read:?}");
    let write_err = write_err.expect("server writes fail after the reset");
    assert_eq!(write_err.kind(), ErrorKind::ConnectionReset, "{write_err}");
    let err = conn.read(&mut [0u8; 8]).await.unwrap_err();
    assert_reset(&err, false, None, "client read after reset");
}

/// Over HTTP/1.1 the client's reset is a TCP RST.
#[tokio::test]
async fn http1_upgrade_client_reset_is_a_tcp_reset() {
    let (url, mut results) = start_reading_server().await;
    let mut conn = open(&url, Mode::Http1Upgrade).await;
    conn.write_all(b"partial").await.unwrap();
    conn.flush().await.unwrap();
    conn.reset();
    let err = results.recv().await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

/// A reset from another task interrupts a read blocked on a silent peer.
#[tokio::test]
async fn reset_handle_wakes_a_blocked_read() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let (url, _) = start(move |conn: H2Conn| {
        let release_rx = release_rx.clone();
        async move {
            // Silent until the test ends.
            if let Some(rx) = release_rx.lock().await.take() {
                let _ = rx.await;
            }
            drop(conn);
        }
    })
    .await;
    for (mode, name) in MODES {
        let mut conn = open(&url, mode).await;
        let handle = conn.reset_handle();
        let reader = tokio::spawn(async move { conn.read(&mut [0u8; 16]).await });
        // On the current-thread runtime, yielding runs the reader task until
        // it parks in the read.
        tokio::task::yield_now().await;
        assert!(!reader.is_finished(), "{name}: the read must be blocked");
        handle.reset();
        let err = reader.await.unwrap().unwrap_err();
        assert_reset(&err, false, None, name);
        assert!(handle.is_reset());
    }
    let _ = release_tx.send(());
}

/// Writes until a write makes no progress for a while; returns the bytes
/// written. Real TCP cannot run on a paused clock, so "blocked by flow
/// control" is observed as a write deadline passing.
async fn write_until_stalled(conn: &mut H2Conn) -> usize {
    let chunk = vec![7u8; 16 * 1024];
    let stall = Duration::from_millis(300);
    let limit = 64 * 1024 * 1024;
    let mut written = 0usize;
    loop {
        conn.set_write_deadline(Some(Instant::now() + stall));
        match conn.write(&chunk).await {
            Ok(n) => written += n,
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                conn.set_write_deadline(None);
                return written;
            }
        }
        assert!(written < limit, "no backpressure after {written} bytes");
    }
}

/// The server stops reading: the client's writes stop well before 16 MiB
/// are in flight, and everything written arrives once the server reads.
#[tokio::test]
async fn backpressure_bounds_bytes_in_flight() {
    for mode in [Mode::Post, Mode::Connect] {
        let (start_tx, start_rx) = oneshot::channel::<()>();
        let start_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(start_rx)));
        let (count_tx, count_rx) = oneshot::channel::<usize>();
        let count_tx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(count_tx)));
        let (url, _) = start(move |mut conn: H2Conn| {
            let start_rx = start_rx.clone();
            let count_tx = count_tx.clone();
            async move {
                if let Some(rx) = start_rx.lock().await.take() {
                    let _ = rx.await;
                }
                let mut total = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => total += n,
                        Err(e) => panic!("server read: {e}"),
                    }
                }
                if let Some(tx) = count_tx.lock().await.take() {
                    let _ = tx.send(total);
                }
            }
        })
        .await;

        let mut conn = open(&url, mode).await;
        let chunk = vec![7u8; 16 * 1024];
        let mut written = write_until_stalled(&mut conn).await;
        assert!(
            written < 16 * 1024 * 1024,
            "{mode:?}: {written} bytes in flight"
        );
        assert!(written > 0, "{mode:?}: nothing written");

        // Clearing the deadline makes the tunnel usable again, losing nothing.
        conn.set_write_deadline(None);
        start_tx.send(()).unwrap();
        conn.write_all(&chunk).await.unwrap();
        written += chunk.len();
        conn.shutdown().await.unwrap();
        assert_eq!(count_rx.await.unwrap(), written, "{mode:?}");
    }
}

#[tokio::test]
async fn read_deadline_interrupts_then_clears() {
    let (send_tx, send_rx) = oneshot::channel::<()>();
    let send_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(send_rx)));
    let (url, _) = start(move |mut conn: H2Conn| {
        let send_rx = send_rx.clone();
        async move {
            if let Some(rx) = send_rx.lock().await.take() {
                let _ = rx.await;
            }
            let _ = conn.write_all(b"late").await;
            let _ = conn.shutdown().await;
        }
    })
    .await;
    let mut conn = open(&url, Mode::Post).await;
    conn.set_read_deadline(Some(Instant::now() + Duration::from_millis(50)));
    let err = conn.read(&mut [0u8; 4]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    conn.set_read_deadline(None);
    send_tx.send(()).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"late");
}

/// An empty-bodied request with no upgrade on HTTP/2 still becomes a tunnel
/// whose client->server direction is already closed.
#[tokio::test]
async fn h2_get_without_body_is_a_half_closed_tunnel() {
    let (url, addr) = start(|mut conn: H2Conn| async move {
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        conn.write_all(format!("read {} bytes", got.len()).as_bytes())
            .await
            .unwrap();
        conn.shutdown().await.unwrap();
    })
    .await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"read 0 bytes");
}

/// One tunnel whose reader stalls holds at most its stream window of the
/// shared connection's window, so the other tunnels keep flowing. (With
/// hyper's default server connection window, equal to the stream window,
/// the second tunnel would block.)
async fn stalled_tunnel_leaves_connection_usable(mode: Mode) {
    let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let (url, addr) = start(move |conn: H2Conn| {
        let first = first.clone();
        let release_rx = release_rx.clone();
        async move {
            if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                // The first tunnel never reads until the test ends.
                if let Some(rx) = release_rx.lock().await.take() {
                    let _ = rx.await;
                }
                drop(conn);
            } else {
                common::echo(conn).await;
            }
        }
    })
    .await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let sender = mux_h2::handshake(tcp).await.unwrap();
    let connector = Connector::new().mode(mode);
    let (mut stalled, _) = connector.connect_with(&sender, url.as_str()).await.unwrap();
    // A busy machine can pause a write past the stall time early; keep
    // going until the tunnel really holds a full stream window.
    let window = usize::try_from(mux_h2::STREAM_WINDOW).unwrap();
    let mut written = 0;
    for _ in 0..50 {
        written += write_until_stalled(&mut stalled).await;
        if written >= window {
            break;
        }
    }
    assert!(written >= window, "{mode:?}: stalled after {written} bytes");
    let (other, _) = connector.connect_with(&sender, url.as_str()).await.unwrap();
    let data = common::random_bytes(512 * 1024, 9);
    let echoed = tokio::time::timeout(Duration::from_secs(20), common::round_trip(other, &data))
        .await
        .unwrap_or_else(|_| panic!("{mode:?}: the second tunnel is blocked"));
    assert!(echoed == data, "{mode:?}");
    let _ = release_tx.send(());
}

#[tokio::test]
async fn stalled_post_tunnel_leaves_connection_usable() {
    stalled_tunnel_leaves_connection_usable(Mode::Post).await;
}

#[tokio::test]
async fn stalled_connect_tunnel_leaves_connection_usable() {
    stalled_tunnel_leaves_connection_usable(Mode::Connect).await;
}

/// A reset from another task interrupts a write blocked by flow control.
#[tokio::test]
async fn reset_handle_wakes_a_blocked_write() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let (url, _) = start(move |conn: H2Conn| {
        let release_rx = release_rx.clone();
        async move {
            // Never reads, so the client's writes stall.
            if let Some(rx) = release_rx.lock().await.take() {
                let _ = rx.await;
            }
            drop(conn);
        }
    })
    .await;
    let mut conn = open(&url, Mode::Post).await;
    write_until_stalled(&mut conn).await;
    let handle = conn.reset_handle();
    let writer = tokio::spawn(async move { conn.write_all(&[1u8; 64 * 1024]).await });
    // On the current-thread runtime, yielding runs the writer task until it
    // parks on the full queue.
    tokio::task::yield_now().await;
    assert!(!writer.is_finished(), "the write must be blocked");
    handle.reset();
    let err = writer.await.unwrap().unwrap_err();
    assert_reset(&err, false, Some(DEFAULT_RESET_CODE), "blocked write");
    let _ = release_tx.send(());
}

/// `close` flushes what was written, ends the stream, and closes reads.
#[tokio::test]
async fn close_delivers_everything_then_eof() {
    let (count_tx, mut count_rx) = tokio::sync::mpsc::unbounded_channel();
    let (url, _) = start(move |mut conn: H2Conn| {
        let count_tx = count_tx.clone();
        async move {
            let mut got = Vec::new();
            let result = conn.read_to_end(&mut got).await.map(|_| got);
            let _ = count_tx.send(result);
        }
    })
    .await;
    for (mode, name) in MODES {
        let mut conn = open(&url, mode).await;
        let data = common::random_bytes(512 * 1024, 11);
        conn.write_all(&data).await.unwrap();
        conn.close().await.unwrap();
        let got = count_rx.recv().await.unwrap().unwrap();
        assert!(got == data, "{name}: {} of {} bytes", got.len(), data.len());
        let err = conn.read(&mut [0u8; 1]).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::NotConnected,
            "{name}: read after close"
        );
    }
}
