//! The tunnel mounted in an axum router (quoted by docs/TUNNEL.md).
//!
//! `/tunnel` turns every request that can be full duplex into an `H2Conn`
//! and echoes it; `/health` is an ordinary route beside it. A plain HTTP/2
//! CONNECT names no path (only `:authority`), so it reaches the router's
//! fallback, which is the tunnel handler too. The example then plays the
//! client in every mode against its own server and exits non-zero if an
//! echo differs.
//!
//! ```text
//! cargo run --example axum_server -p mux-h2
//! ```

// A demo that reports on stdout.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Duration;

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
    routing::{any, get},
    Router,
};
use clap::Parser;
use mux_h2::{Connector, H2Conn, Mode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The tunnel mounted in an axum router beside an ordinary route: serves
/// on 127.0.0.1, then opens a tunnel in every mode (plain CONNECT,
/// extended CONNECT, POST, HTTP/1.1 upgrade) against itself and checks each
/// echo. Exits non-zero if one differs. Takes no arguments.
#[derive(Parser)]
#[command(name = "axum_server")]
struct Args {}

/// The axum handler: `accept` takes axum's `Request` as it is. The response
/// must go back at once; the tunnel lives on in its own task.
async fn tunnel(req: Request) -> Response {
    match mux_h2::accept(req) {
        Ok((response, conn)) => {
            tokio::spawn(echo(conn));
            response.into_response()
        }
        // 426 for HTTP/1.1 without `Upgrade: mux-tunnel`, 505 for HTTP/1.0.
        Err(refused) => refused.to_response().into_response(),
    }
}

/// What runs on each tunnel: here, an echo. A multiplexer would go here
/// (`mux_yamux_lite::Connection::new(conn, Role::Server, ..)`).
async fn echo(conn: H2Conn) {
    let (mut rx, mut tx) = tokio::io::split(conn);
    let _ = tokio::io::copy(&mut rx, &mut tx).await;
    let _ = tx.shutdown().await;
}

/// The application: the tunnel beside ordinary routes.
fn app() -> Router {
    Router::new()
        // `any`: POST, extended CONNECT (which has a path) and the HTTP/1.1
        // upgrade (a GET) all land here.
        .route("/tunnel", any(tunnel))
        .route("/health", get(|| async { "ok\n" }))
        // Plain CONNECT has no path.
        .fallback(tunnel)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    Args::parse();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // axum::serve speaks HTTP/1.1 and h2c, keeps hyper's upgrades on and
    // enables extended CONNECT. It uses hyper's default HTTP/2 windows (see
    // docs/TUNNEL.md, "Limits"); for control over them, serve the router
    // from your own hyper-util loop as examples/hyper_server.rs does.
    tokio::spawn(async move { axum::serve(listener, app()).await });
    println!("axum server on http://{addr}/tunnel");

    let url = format!("http://{addr}/tunnel");
    let clients = [
        ("plain CONNECT (fallback)", Connector::new()),
        (
            "extended CONNECT",
            Connector::new().extended_connect("mux-tunnel"),
        ),
        ("POST", Connector::new().mode(Mode::Post)),
        (
            "HTTP/1.1 upgrade",
            Connector::new().mode(Mode::Http1Upgrade),
        ),
    ];
    for (name, connector) in clients {
        let sent = format!("hello through axum over {name}").into_bytes();
        let open_and_echo = async {
            let (mut conn, response) = connector.connect(url.as_str()).await?;
            conn.write_all(&sent).await?;
            conn.shutdown().await?;
            let mut echoed = Vec::new();
            conn.read_to_end(&mut echoed).await?;
            Ok::<_, Box<dyn Error + Send + Sync>>((response.status, echoed))
        };
        let (status, echoed) = tokio::time::timeout(Duration::from_secs(10), open_and_echo)
            .await
            .map_err(|_| format!("{name}: timed out"))??;
        if echoed != sent {
            return Err(format!("{name}: echo differs").into());
        }
        println!("{name:<26} status {status}, {} bytes echoed", echoed.len());
    }
    Ok(())
}
