//! Other software at either end: HTTP/1.1 spoken inside a tunnel, and curl
//! as the client of `mux_h2::serve`.
// Test helpers outside `#[test]` fns panic on failure by design, and size
// arithmetic in tests cannot overflow; the curl tests explain a skip on stderr.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::print_stderr
)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::{echo, open, random_bytes, start, MODES};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use mux_h2::H2Conn;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// hyper's HTTP/1.1 server runs over the server end of the tunnel and
/// hyper's HTTP/1.1 client over the client end, several requests on one
/// keep-alive connection.
#[tokio::test]
async fn http1_inside_the_tunnel() {
    let (url, _) = start(|conn: H2Conn| async move {
        let service =
            hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                let path = req.uri().path().to_owned();
                let body = req.into_body().collect().await?.to_bytes();
                let text = format!("{path} got {} bytes", body.len());
                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(conn), service)
            .await;
    })
    .await;

    for (mode, name) in MODES {
        let conn = open(&url, mode).await;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        for i in 0..3usize {
            let req = Request::post(format!("/inner/{i}"))
                .header("host", "inside")
                .body(Full::new(Bytes::from(vec![b'x'; i * 1000])))
                .unwrap();
            let response = sender.send_request(req).await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("/inner/{i} got {} bytes", i * 1000), "{name}");
        }
        drop(sender);
        driver.await.unwrap().unwrap();
    }
}

async fn curl_available() -> bool {
    let found = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("skipping: curl is not installed");
    }
    found
}

/// Each line curl streams up comes back down before the next is sent, so
/// both directions stream at once through curl's HTTP/2 (nghttp2).
#[tokio::test]
async fn curl_streams_post_both_ways() {
    if !curl_available().await {
        return;
    }
    let (url, _) = start(echo).await;
    // `-T .` uploads stdin as it arrives, reading it non-blocking (`-T -`
    // and `--data-binary @-` wait for full buffers or EOF); `-N` writes the
    // response out as it arrives.
    let mut curl = Command::new("curl")
        .args([
            "--http2-prior-knowledge",
            "-sS",
            "--no-progress-meter",
            "-N",
            "-T",
            ".",
            "-X",
            "POST",
        ])
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = curl.stdin.take().unwrap();
    let mut lines = BufReader::new(curl.stdout.take().unwrap()).lines();
    for i in 0..5 {
        let line = format!("line {i} through curl");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        // Bounded: a curl that buffered the upload would hang here.
        let echoed = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("curl streamed the echo back")
            .unwrap();
        assert_eq!(echoed.as_deref(), Some(line.as_str()));
    }
    drop(stdin);
    assert_eq!(lines.next_line().await.unwrap(), None);
    assert!(curl.wait().await.unwrap().success());
}

/// Binary data uploaded whole with `--data-binary @-` echoes byte for byte.
#[tokio::test]
async fn curl_data_binary_echo() {
    if !curl_available().await {
        return;
    }
    let (url, _) = start(echo).await;
    let data = random_bytes(300 * 1024, 42);
    let mut curl = Command::new("curl")
        .args([
            "--http2-prior-knowledge",
            "-sS",
            "-N",
            "--data-binary",
            "@-",
            "-X",
            "POST",
        ])
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = curl.stdin.take().unwrap();
    let mut stdout = curl.stdout.take().unwrap();
    let upload = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&upload).await.unwrap();
    });
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert!(curl.wait().await.unwrap().success());
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}

/// curl over plain HTTP/1.1 gets the 426 refusal, not a hang.
#[tokio::test]
async fn curl_http1_without_upgrade_gets_426() {
    if !curl_available().await {
        return;
    }
    let (url, _) = start(|_conn| async {}).await;
    let output = Command::new("curl")
        .args([
            "--http1.1",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-d",
            "x",
        ])
        .arg(&url)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "426");
}
