//! How a tunnel's end reads (the table in `mux_h2::error`): a GOAWAY names
//! who sent it and its code on both ends, and a write after the peer is
//! gone fails with the same `ErrorKind` in every mode.
// Test helpers outside `#[test]` fns panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::ErrorKind;

use bytes::Bytes;
use common::{open, start, start_raw, MODES};
use http::{Method, Request, Response};
use mux_core::{ConnError, StreamError};
use mux_h2::{Connector, H2Conn, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Checks that `err` is the connection's end by a GOAWAY with `code`, sent
/// by the peer (`remote`) or by this side.
fn assert_go_away(err: &std::io::Error, remote: bool, code: u32, what: &str) {
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{what}: {err}");
    let expected = |c: &ConnError| match c {
        ConnError::GoAway { code: got } => remote && *got == code,
        ConnError::GoAwaySent { code: got } => !remote && *got == code,
        _ => false,
    };
    match StreamError::from_io(err) {
        Some(StreamError::ConnectionClosed(c)) if expected(c) => {}
        other => panic!("{what}: expected GOAWAY code {code} (remote {remote}), got {other:?}"),
    }
}

/// A bare h2 server that accepts one tunnel request, answers 200 and, once
/// the client's first bytes show it has the tunnel, ends the connection
/// with `GOAWAY(ENHANCE_YOUR_CALM)`.
async fn start_go_away_server() -> String {
    start_raw(|tcp| async move {
        let mut conn = h2::server::handshake(tcp).await.unwrap();
        let Some(Ok((req, mut respond))) = conn.accept().await else {
            return;
        };
        let _send = respond.send_response(Response::new(()), false).unwrap();
        let mut body = req.into_body();
        // Drives the connection too, while it waits for the bytes.
        let first = tokio::select! {
            first = body.data() => first,
            _ = conn.accept() => None,
        };
        assert!(matches!(first, Some(Ok(_))), "{first:?}");
        conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
        // Drive the connection until the GOAWAY is out and it ends.
        while conn.accept().await.is_some() {}
    })
    .await
}

/// The client learns that the server ended the connection, and the code,
/// on reads and on writes.
#[tokio::test]
async fn go_away_from_server_reaches_client_reads_and_writes() {
    let url = start_go_away_server().await;
    for mode in [Mode::Connect, Mode::Post] {
        let (mut conn, _) = Connector::new()
            .mode(mode)
            .connect(url.as_str())
            .await
            .unwrap();
        conn.write_all(b"hi").await.unwrap();
        let err = conn.read(&mut [0u8; 16]).await.unwrap_err();
        assert_go_away(&err, true, 11, &format!("{mode:?}: read"));
        let err = write_until_error(&mut conn).await;
        assert_go_away(&err, true, 11, &format!("{mode:?}: write"));
    }
}

/// A server handler learns that its own side ended the connection with
/// `ENHANCE_YOUR_CALM` (hyper's flood guard), when a bare h2 client floods
/// it with 1-byte DATA frames the handler does not read yet.
#[tokio::test]
async fn go_away_sent_by_server_reaches_its_handler() {
    let (conn_tx, mut conns) = mpsc::unbounded_channel();
    let (url, addr) = start(move |conn: H2Conn| {
        let conn_tx = conn_tx.clone();
        async move {
            let _ = conn_tx.send(conn);
        }
    })
    .await;
    for method in [Method::CONNECT, Method::POST] {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        let (ended_tx, ended) = oneshot::channel();
        tokio::spawn(async move {
            let _ = ended_tx.send(connection.await);
        });
        let uri = if method == Method::CONNECT {
            addr.to_string()
        } else {
            url.clone()
        };
        let req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(())
            .unwrap();
        let (_response, mut body) = client.send_request(req, false).unwrap();
        // The server has the tunnel before any DATA, so it reads none.
        let mut conn = conns.recv().await.unwrap();
        for _ in 0..20_000 {
            if body.send_data(Bytes::from_static(b"x"), false).is_err() {
                break;
            }
        }
        let ended = ended.await.unwrap().unwrap_err();
        assert_eq!(
            ended.reason(),
            Some(h2::Reason::ENHANCE_YOUR_CALM),
            "{method}"
        );
        let mut got = Vec::new();
        let err = conn.read_to_end(&mut got).await.unwrap_err();
        assert_go_away(&err, false, 11, &format!("{method}: handler read"));
        let err = write_until_error(&mut conn).await;
        assert_go_away(&err, false, 11, &format!("{method}: handler write"));
    }
}

/// Writes until a write fails; the peer is gone, so one must, soon.
async fn write_until_error(conn: &mut H2Conn) -> std::io::Error {
    for _ in 0..10_000 {
        if let Err(e) = conn.write_all(&[0u8; 1024]).await {
            return e;
        }
        tokio::task::yield_now().await;
    }
    panic!("writes kept succeeding after the peer was gone");
}

/// The server's handler drops the tunnel at once, without a shutdown: the
/// client reads the end, and its writes then fail with `ConnectionReset`
/// in every mode.
#[tokio::test]
async fn write_after_peer_gone_is_connection_reset_in_every_mode() {
    let (url, _) = start(|conn: H2Conn| async move { drop(conn) }).await;
    for (mode, name) in MODES {
        let mut conn = open(&url, mode).await;
        // The peer's end arrives as EOF or as an error, by mode.
        let _ = conn.read(&mut [0u8; 16]).await;
        let err = write_until_error(&mut conn).await;
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{name}: {err}");
        assert!(
            StreamError::from_io(&err).is_some_and(StreamError::is_remote),
            "{name}: the peer ended it: {err}"
        );
    }
}
