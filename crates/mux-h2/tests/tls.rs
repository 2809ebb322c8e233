//! Tunnels over TLS (feature `tls`), with ALPN choosing h2 or http/1.1.
#![cfg(feature = "tls")]
// Test helpers outside `#[test]` fns panic on failure by design.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod common;

use common::{echo, random_bytes, round_trip, MODES};
use mux_h2::{ConnectError, Connector, H2ConnExt, TunnelKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

const CERT: &[u8] = include_bytes!("fixtures/localhost.cert.der");
const KEY: &[u8] = include_bytes!("fixtures/localhost.key.der");

async fn start_tls() -> String {
    let config = mux_h2::tls::server_config(
        vec![CertificateDer::from(CERT.to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(KEY.to_vec())),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(mux_h2::serve_tls(listener, config, echo));
    format!("https://localhost:{port}/tunnel")
}

#[tokio::test]
async fn echo_over_tls_in_every_mode() {
    let url = start_tls().await;
    let client = mux_h2::tls::client_config(vec![CertificateDer::from(CERT.to_vec())]).unwrap();
    for (i, (mode, name)) in MODES.into_iter().enumerate() {
        let (conn, parts) = Connector::new()
            .mode(mode)
            .tls_config(client.clone())
            .connect(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected_status = if conn.tunnel_kind() == TunnelKind::Http1Upgrade {
            101
        } else {
            200
        };
        assert_eq!(parts.status, expected_status, "{name}");
        let data = random_bytes(256 * 1024, 7 + u64::try_from(i).unwrap());
        assert!(round_trip(conn, &data).await == data, "{name}");
    }
}

/// Without the server's certificate among the roots the handshake fails.
#[tokio::test]
async fn untrusted_certificate_is_rejected() {
    let url = start_tls().await;
    let err = mux_h2::connect(url.as_str()).await.map(|_| ()).unwrap_err();
    assert!(matches!(err, ConnectError::Tls(_)), "{err}");
}
