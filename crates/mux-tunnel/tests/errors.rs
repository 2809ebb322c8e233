//! Bad input and refusals: each gives one clear error line and a non-zero
//! exit, and a wrong password never opens a tunnel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::{client, echo_check, echo_server, server, Proc};
use tokio::{io::AsyncWriteExt, net::TcpListener};

#[tokio::test]
async fn right_password_forwards() {
    let echo = echo_server().await;
    let (_server, url) = server(&["--auth", "user:secret"]).await;
    let remote = format!("0:{echo}");
    let (_client, addrs) = client(&["--auth", "user:secret"], &url, &[&remote]).await;
    echo_check(addrs[0], 0, 1024).await;
}

#[tokio::test]
async fn wrong_or_missing_password_fails_closed() {
    let echo = echo_server().await;
    let (_server, url) = server(&["--auth", "user:secret"]).await;
    let remote = format!("0:{echo}");
    for auth in [&["--auth", "user:wrong"][..], &[]] {
        let mut args = vec!["client"];
        args.extend_from_slice(auth);
        args.extend_from_slice(&[&url, &remote]);
        let mut client = Proc::start(&args);
        let (status, stderr) = client.exit_with_stderr().await;
        assert_eq!(status.code(), Some(1), "{auth:?}: {stderr}");
        assert!(
            stderr.contains("refused the credentials (HTTP 401 Unauthorized)"),
            "{auth:?}: {stderr}"
        );
    }
}

#[tokio::test]
async fn unparsable_remote_is_a_usage_error() {
    let mut client = Proc::start(&["client", "http://127.0.0.1:1/", "80x:host:80"]);
    let (status, stderr) = client.exit_with_stderr().await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(r#""80x" is not a valid port"#), "{stderr}");
}

#[tokio::test]
async fn port_in_use_is_one_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let remote = format!("{port}:127.0.0.1:80");
    let mut client = Proc::start(&["client", "http://127.0.0.1:1/", &remote]);
    let (status, stderr) = client.exit_with_stderr().await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on 127.0.0.1:"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn a_server_that_is_not_mux_tunnel_is_refused() {
    // An HTTP/1.1 server that answers anything with 404.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let url = format!("http://{addr}/");
    for mode in ["connect", "upgrade"] {
        let mut client = Proc::start(&["client", "--mode", mode, &url, "0:127.0.0.1:80"]);
        let (status, stderr) = client.exit_with_stderr().await;
        assert_eq!(status.code(), Some(1), "{mode}: {stderr}");
        assert!(stderr.contains("mux-tunnel: error:"), "{mode}: {stderr}");
    }
}

/// An authfile user reaches the targets its patterns grant; any other
/// target resets that connection only.
#[tokio::test]
async fn authfile_restricts_targets_per_user() {
    let echo = echo_server().await;
    let other = echo_server().await;
    let dir = std::env::temp_dir().join(format!("mux-tunnel-authfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users");
    std::fs::write(
        &path,
        format!("# test users\nweb:pw 127.0.0.1:{}\n", echo.port()),
    )
    .unwrap();
    let (_server, url) = server(&["--authfile", path.to_str().unwrap()]).await;
    let granted = format!("0:{echo}");
    let denied = format!("0:{other}");
    let (_client, addrs) = client(&["--auth", "web:pw"], &url, &[&granted, &denied]).await;
    echo_check(addrs[0], 0, 4096).await;
    let mut tcp = tokio::net::TcpStream::connect(addrs[1]).await.unwrap();
    let mut buf = [0u8; 8];
    let read = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    echo_check(addrs[0], 1, 4096).await;
    let _ = std::fs::remove_dir_all(&dir);
}
