//! `Connector::connect_over`: a tunnel over a connection the caller set up,
//! in every mode.
// Test helpers outside `#[test]` fns panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{echo, random_bytes, round_trip, start, MODES};
use mux_h2::{Connector, H2ConnExt, TunnelKind};
use tokio::net::TcpStream;

/// The caller dials; the URL names a host that does not resolve, so the
/// tunnel can only have gone over the given connection.
#[tokio::test]
async fn connect_over_a_given_connection_in_every_mode() {
    let (_url, addr) = start(echo).await;
    tokio::time::timeout(Duration::from_secs(10), async {
        for (i, (mode, name)) in MODES.into_iter().enumerate() {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (conn, parts) = Connector::new()
                .mode(mode)
                .connect_over(tcp, "http://tunnel.invalid/tunnel")
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = if conn.tunnel_kind() == TunnelKind::Http1Upgrade {
                101
            } else {
                200
            };
            assert_eq!(parts.status, expected, "{name}");
            let data = random_bytes(128 * 1024, 40 + u64::try_from(i).unwrap());
            assert!(round_trip(conn, &data).await == data, "{name}");
        }
    })
    .await
    .expect("in time");
}
