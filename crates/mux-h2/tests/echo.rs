//! Data integrity through tunnels of every mode, against a real hyper server.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod common;

use common::{echo, open, random_bytes, round_trip, start, MODES};
use mux_h2::{handshake, Connector, H2ConnExt, Mode, TunnelKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1024 * 1024;

async fn echo_1mib(mode: Mode, seed: u64) {
    let (url, _) = start(echo).await;
    let conn = open(&url, mode).await;
    let data = random_bytes(MIB, seed);
    let got = round_trip(conn, &data).await;
    assert_eq!(got.len(), data.len(), "{mode:?}: length");
    assert!(got == data, "{mode:?}: echoed bytes differ");
}

#[tokio::test]
async fn echo_connect_1mib_full_duplex() {
    echo_1mib(Mode::Connect, 1).await;
}

#[tokio::test]
async fn echo_post_1mib_full_duplex() {
    echo_1mib(Mode::Post, 2).await;
}

#[tokio::test]
async fn echo_http1_upgrade_1mib_full_duplex() {
    echo_1mib(Mode::Http1Upgrade, 3).await;
}

#[tokio::test]
async fn echo_extended_connect() {
    let (url, _) = start(echo).await;
    let (conn, parts) = Connector::new()
        .extended_connect("mux-tunnel")
        .connect(url.as_str())
        .await
        .unwrap();
    assert_eq!(parts.status, 200);
    assert_eq!(conn.tunnel_kind(), TunnelKind::H2Connect);
    let data = random_bytes(256 * 1024, 4);
    assert!(round_trip(conn, &data).await == data);
}

/// More than the HTTP/2 stream window (2 MiB) each way: only a transport
/// that reads and writes at the same time gets through.
#[tokio::test]
async fn echo_post_8mib_exceeds_windows() {
    let (url, _) = start(echo).await;
    let conn = open(&url, Mode::Post).await;
    let data = random_bytes(8 * MIB, 5);
    assert!(round_trip(conn, &data).await == data);
}

#[tokio::test]
async fn kinds_and_addresses_match_the_mode() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let (url, server_addr) = start(move |conn: mux_h2::H2Conn| {
        let seen_tx = seen_tx.clone();
        async move {
            let _ = seen_tx.send((conn.tunnel_kind(), conn.local_addr(), conn.remote_addr()));
            echo(conn).await;
        }
    })
    .await;
    for (mode, name) in MODES {
        let conn = open(&url, mode).await;
        let expected = match mode {
            Mode::Connect => TunnelKind::H2Connect,
            Mode::Post => TunnelKind::H2Body,
            _ => TunnelKind::Http1Upgrade,
        };
        assert_eq!(conn.tunnel_kind(), expected, "{name}");
        assert_eq!(conn.remote_addr(), Some(server_addr), "{name}");
        let (kind, local, remote) = seen_rx.recv().await.unwrap();
        assert_eq!(kind, expected, "{name}: server side");
        assert_eq!(local, Some(server_addr), "{name}: server local");
        assert_eq!(remote, conn.local_addr(), "{name}: server remote");
    }
}

#[tokio::test]
async fn several_tunnels_share_one_send_request() {
    let (url, addr) = start(echo).await;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let sender = handshake(tcp).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let mode = if i % 2 == 0 {
            Mode::Connect
        } else {
            Mode::Post
        };
        let connector = Connector::new().mode(mode);
        let (conn, parts) = connector.connect_with(&sender, url.as_str()).await.unwrap();
        assert_eq!(parts.status, 200);
        // Several tunnels carry data at the same time.
        tasks.push(tokio::spawn(async move {
            let data = random_bytes(256 * 1024 + usize::try_from(i).unwrap(), 100 + i);
            assert!(
                round_trip(conn, &data).await == data,
                "tunnel {i} ({mode:?})"
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }

    // The upgrade mode takes over a whole connection, so it cannot share.
    let err = Connector::new()
        .mode(Mode::Http1Upgrade)
        .connect_with(&sender, url.as_str())
        .await
        .unwrap_err();
    assert!(
        matches!(err, mux_h2::ConnectError::NeedsOwnConnection),
        "{err}"
    );
}

/// Newline-delimited JSON request/response through the tunnel, as in
/// h2conn's examples.
#[tokio::test]
async fn json_messages_newline_delimited() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Msg {
        id: u32,
        text: String,
    }

    // The server answers each message with its text upper-cased.
    let (url, _) = start(|conn: mux_h2::H2Conn| async move {
        let (rx, mut tx) = tokio::io::split(conn);
        let mut lines = tokio::io::BufReader::new(rx).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(msg) = serde_json::from_str::<Msg>(&line) else {
                return;
            };
            let reply = Msg {
                id: msg.id,
                text: msg.text.to_uppercase(),
            };
            let mut out = serde_json::to_vec(&reply).unwrap();
            out.push(b'\n');
            if tx.write_all(&out).await.is_err() {
                return;
            }
        }
        let _ = tx.shutdown().await;
    })
    .await;

    for (mode, name) in MODES {
        let conn = open(&url, mode).await;
        let (rx, mut tx) = tokio::io::split(conn);
        let mut lines = tokio::io::BufReader::new(rx).lines();
        // One message at a time: each reply must come back before the next
        // request, so nothing may sit in a buffer waiting for more data.
        for id in 0..20 {
            let msg = Msg {
                id,
                text: format!("message {id} via {name}"),
            };
            let mut out = serde_json::to_vec(&msg).unwrap();
            out.push(b'\n');
            tx.write_all(&out).await.unwrap();
            tx.flush().await.unwrap();
            let line = lines.next_line().await.unwrap().expect("reply");
            let reply: Msg = serde_json::from_str(&line).unwrap();
            assert_eq!(
                reply,
                Msg {
                    id,
                    text: msg.text.to_uppercase()
                },
                "{name}"
            );
        }
        tx.shutdown().await.unwrap();
        assert_eq!(lines.next_line().await.unwrap(), None, "{name}: EOF");
    }
}

use tokio::io::AsyncBufReadExt;

/// Small writes and reads interleave without waiting for buffers to fill.
#[tokio::test]
async fn ping_pong_small_messages() {
    let (url, _) = start(echo).await;
    for (mode, name) in MODES {
        let mut conn = open(&url, mode).await;
        let mut buf = [0u8; 4];
        for i in 0..50u32 {
            conn.write_all(&i.to_be_bytes()).await.unwrap();
            conn.read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_be_bytes(buf), i, "{name}");
        }
    }
}
