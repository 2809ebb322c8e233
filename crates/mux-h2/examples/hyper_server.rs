//! The tunnel in a plain hyper server, with a multiplexer on top (quoted
//! by docs/TUNNEL.md).
//!
//! A hyper-util HTTP/1.1 + HTTP/2 server routes `/tunnel` (and plain
//! CONNECT, which has no path) to `mux_h2::accept` and answers everything
//! else itself. Each tunnel runs a mux-yamux-lite server that echoes every
//! stream. The example then plays the client in every mode: one tunnel,
//! several muxed streams through it, each echo checked; it exits non-zero
//! if one differs.
//!
//! ```text
//! cargo run --example hyper_server -p mux-h2
//! ```

// A demo that reports on stdout and counts a handful of streams.
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::convert::Infallible;
use std::error::Error;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use mux_h2::{ConnAddrs, Connector, H2Conn, Mode, TunnelBody};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type BoxError = Box<dyn Error + Send + Sync>;

/// The tunnel in a plain hyper server with mux-yamux-lite on top: serves
/// on 127.0.0.1, then opens a tunnel in every mode (CONNECT, POST,
/// HTTP/1.1 upgrade) against itself, runs 8 muxed streams through each and
/// checks every echo. Exits non-zero if one differs. Takes no arguments.
#[derive(Parser)]
#[command(name = "hyper_server")]
struct Args {}

/// The hyper service: tunnels on `/tunnel` and for plain CONNECT, a small
/// answer elsewhere. The tunnel's response goes back at once.
async fn route(req: Request<Incoming>) -> Result<Response<TunnelBody>, Infallible> {
    let is_tunnel = req.method() == Method::CONNECT || req.uri().path() == "/tunnel";
    if !is_tunnel {
        let mut response = Response::new(
            Full::new(Bytes::from_static(b"not a tunnel\n"))
                .map_err(|never| match never {})
                .boxed(),
        );
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    Ok(match mux_h2::accept(req) {
        Ok((response, conn)) => {
            tokio::spawn(mux_server(conn));
            response
        }
        // 426 for HTTP/1.1 without `Upgrade: mux-tunnel`, 505 for HTTP/1.0.
        Err(refused) => refused.to_response(),
    })
}

/// Runs mux-yamux-lite over one tunnel and echoes every stream.
async fn mux_server(conn: H2Conn) {
    let mux = Connection::new(conn, Role::Server, Config::default());
    while let Ok(stream) = mux.accept_stream().await {
        tokio::spawn(async move {
            let (mut rx, mut tx) = tokio::io::split(stream);
            let _ = tokio::io::copy(&mut rx, &mut tx).await;
            let _ = tx.shutdown().await;
        });
    }
}

/// Accepts TCP connections and serves each with hyper-util's auto builder.
async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        // Extended CONNECT (RFC 8441), for `Connector::extended_connect`.
        .enable_connect_protocol()
        // One stalled tunnel must not stall the others on its connection.
        .initial_stream_window_size(mux_h2::STREAM_WINDOW)
        .initial_connection_window_size(mux_h2::CONNECTION_WINDOW);
    loop {
        let (tcp, remote) = listener.accept().await?;
        let addrs = ConnAddrs {
            local: tcp.local_addr().ok(),
            remote: Some(remote),
        };
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                // Optional: gives the tunnel its addresses.
                req.extensions_mut().insert(addrs);
                route(req)
            });
            // `_with_upgrades`: the HTTP/1.1 upgrade path needs it.
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// One tunnel in `mode`, `streams` muxed streams through it, each echoed.
async fn client(url: &str, mode: Mode, streams: usize) -> Result<usize, BoxError> {
    let (tunnel, _) = Connector::new().mode(mode).connect(url).await?;
    let mux = Connection::new(tunnel, Role::Client, Config::default());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..streams {
        let stream: Stream = mux.open_stream().await?;
        tasks.spawn(async move {
            let sent = format!("stream {i} says hello").repeat(1000).into_bytes();
            let (mut rx, mut tx) = tokio::io::split(stream);
            let to_send = sent.clone();
            let writer = async move {
                tx.write_all(&to_send).await?;
                tx.shutdown().await
            };
            let mut echoed = Vec::new();
            let (wrote, read) = tokio::join!(writer, rx.read_to_end(&mut echoed));
            wrote?;
            read?;
            Ok::<_, std::io::Error>(echoed == sent)
        });
    }
    let mut verified = 0;
    while let Some(joined) = tasks.join_next().await {
        if joined?? {
            verified += 1;
        }
    }
    mux.close().await?;
    Ok(verified)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    Args::parse();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener));
    println!("hyper server on http://{addr}/tunnel");

    let url = format!("http://{addr}/tunnel");
    let streams = 8;
    for (mode, name) in [
        (Mode::Connect, "CONNECT"),
        (Mode::Post, "POST"),
        (Mode::Http1Upgrade, "HTTP/1.1 upgrade"),
    ] {
        let verified = tokio::time::timeout(Duration::from_secs(20), client(&url, mode, streams))
            .await
            .map_err(|_| format!("{name}: timed out"))??;
        println!("{name:<17} {verified}/{streams} muxed streams echoed intact");
        if verified != streams {
            return Err(format!("{name}: {} echoes differ", streams - verified).into());
        }
    }
    Ok(())
}
