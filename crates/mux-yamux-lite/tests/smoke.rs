//! Smoke test: one stream echoes 3 MB over an in-memory pipe.
use mux_core::MuxedStream;
use mux_yamux_lite::{Config, Connection, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn echo_one_stream() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let client = Connection::new(a, Role::Client, Config::default());
    let server = Connection::new(b, Role::Server, Config::default());
    let srv = tokio::spawn(async move {
        let mut s = server.accept_stream().await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
        s.shutdown().await.unwrap();
        server
    });
    let mut s = client.open_stream().await.unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
    let d2 = data.clone();
    let (mut r, mut w) = tokio::io::split(s);
    let wr = tokio::spawn(async move {
        w.write_all(&d2).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data);
    let w = wr.await.unwrap();
    s = r.unsplit(w);
    assert!(s.id().get() == 1);
    let _server = srv.await.unwrap();
}
