//! The `futures-io` feature: an RwConn used through futures' traits.
#![cfg(feature = "futures-io")]

use futures::io::{AsyncReadExt, AsyncWriteExt};
use mux_core::{compat::into_futures_io, RwConn};

#[tokio::test]
async fn rwconn_works_through_futures_io() {
    let (a_rx, b_tx) = tokio::io::simplex(64);
    let (b_rx, a_tx) = tokio::io::simplex(64);
    let mut a = into_futures_io(RwConn::new(a_rx, a_tx));
    let mut b = into_futures_io(RwConn::new(b_rx, b_tx));
    a.write_all(b"through futures-io").await.unwrap();
    a.flush().await.unwrap();
    let mut buf = [0u8; 18];
    b.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"through futures-io");
}
