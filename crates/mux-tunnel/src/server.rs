//! `mux-tunnel server`: accepts HTTP exchanges, runs one mux-yamux-lite
//! connection over each, and connects every stream to the target its
//! header names.
//!
//! The HTTP side is a hyper-util server (HTTP/1.1 and HTTP/2 on one port, as
//! `mux_h2::serve`; in clear, or over TLS with `--tls-*`) whose service checks credentials before it calls
//! `mux_h2::accept`: a request without them gets 401 and no tunnel. An
//! accepted tunnel's response carries [`SERVER_HEADER`], by which the client
//! knows it reached a mux-tunnel server.

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use bytes::Bytes;
use http::{header::WWW_AUTHENTICATE, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use mux_h2::{H2Conn, TunnelBody};
use mux_yamux_lite::{Connection, Role, Stream};
use tokio::net::TcpListener;

use crate::{
    auth::{Auth, Grant},
    cli::ServerArgs,
    forward,
    header::{self, Kind, Status, HEADER_TIMEOUT},
    mux_config, reverse,
    tls::ServerTls,
};

/// The response header that marks a mux-tunnel server, with the stream
/// header version it speaks.
pub(crate) const SERVER_HEADER: &str = "mux-tunnel";

/// What every tunnel of a server shares.
#[derive(Debug)]
struct Shared {
    auth: Auth,
    mux: mux_yamux_lite::Config,
    /// `--reverse`: clients may listen here.
    reverse: bool,
    /// `--socks`: clients' SOCKS5 connections may leave from here.
    socks: bool,
}

/// Runs the server until accepting fails for good.
pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let shared = Arc::new(Shared {
        auth: server_auth(&args)?,
        mux: mux_config(args.keepalive),
        reverse: args.reverse,
        socks: args.socks,
    });
    let tls = server_tls(&args)?;
    let listener = TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    if let Some(tls) = &tls {
        announce(&format!("fingerprint {}", tls.fingerprint));
    }
    announce(&format!("listening {local}"));
    tracing::info!(%local, tls = tls.is_some(), "server listening");
    let acceptor = tls.map(|tls| tokio_rustls::TlsAcceptor::from(tls.config));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .enable_connect_protocol()
        .initial_stream_window_size(mux_h2::STREAM_WINDOW)
        .initial_connection_window_size(mux_h2::CONNECTION_WINDOW)
        .max_frame_size(mux_h2::MAX_FRAME_SIZE);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => return Err(e).context("accepting connections failed"),
        };
        let _ = tcp.set_nodelay(true);
        let builder = builder.clone();
        let shared = shared.clone();
        match &acceptor {
            None => {
                tokio::spawn(serve_http(builder, tcp, peer, shared));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => serve_http(builder, tls, peer, shared).await,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_elapsed) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one HTTP connection (HTTP/1.1 or HTTP/2), each request through
/// [`route`].
async fn serve_http<I>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    peer: SocketAddr,
    shared: Arc<Shared>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        std::future::ready(Ok::<_, Infallible>(route(req, peer, &shared)))
    });
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with error");
    }
}

/// The certificate of `--tls-cert`/`--tls-key` or `--tls-self-signed`, if
/// any.
fn server_tls(args: &ServerArgs) -> anyhow::Result<Option<ServerTls>> {
    if args.tls_self_signed {
        let host = args
            .listen
            .rsplit_once(':')
            .map_or(args.listen.as_str(), |(host, _port)| host);
        return ServerTls::self_signed(host).map(Some);
    }
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => ServerTls::from_pem_files(cert, key).map(Some),
        _ => Ok(None),
    }
}

/// The credentials `--auth` or `--authfile` require.
fn server_auth(args: &ServerArgs) -> anyhow::Result<Auth> {
    match &args.authfile {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --authfile {}", path.display()))?;
            Auth::from_authfile(&text)
                .map_err(|e| anyhow::anyhow!("--authfile {}: {e}", path.display()))
        }
        None => Auth::new(args.auth.as_ref()).map_err(anyhow::Error::msg),
    }
}

/// A stdout line tests and scripts wait for.
#[allow(
    clippy::print_stdout,
    reason = "the documented `fingerprint` and `listening` lines"
)]
fn announce(line: &str) {
    println!("{line}");
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// Checks credentials, then turns the request into a tunnel.
fn route(req: Request<Incoming>, peer: SocketAddr, shared: &Arc<Shared>) -> Response<TunnelBody> {
    let Some(grant) = shared.auth.permits(req.headers()) else {
        tracing::warn!(%peer, "tunnel refused: wrong or missing credentials");
        let mut response = text_response(StatusCode::UNAUTHORIZED, "authentication required\n");
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mux-tunnel\""),
        );
        return response;
    };
    match mux_h2::accept(req) {
        Ok((mut response, conn)) => {
            response
                .headers_mut()
                .insert(SERVER_HEADER, HeaderValue::from(u16::from(header::VERSION)));
            tokio::spawn(tunnel(conn, peer, shared.clone(), grant));
            response
        }
        Err(refused) => refused.to_response(),
    }
}

fn text_response(status: StatusCode, text: &'static str) -> Response<TunnelBody> {
    let mut response = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// Runs one tunnel: a mux connection whose every stream is served.
async fn tunnel(conn: H2Conn, peer: SocketAddr, shared: Arc<Shared>, grant: Grant) {
    let mux = Connection::new(conn, Role::Server, shared.mux.clone());
    tracing::info!(%peer, "tunnel open");
    let end = loop {
        match mux.accept_stream().await {
            Ok(stream) => {
                tokio::spawn(serve_stream(
                    stream,
                    mux.clone(),
                    peer,
                    shared.clone(),
                    grant.clone(),
                ));
            }
            Err(e) => break e,
        }
    };
    tracing::info!(%peer, reason = %end, "tunnel closed");
}

/// Reads a stream's header and serves it.
async fn serve_stream(
    mut stream: Stream,
    mux: Connection,
    peer: SocketAddr,
    shared: Arc<Shared>,
    grant: Grant,
) {
    let request =
        match tokio::time::timeout(HEADER_TIMEOUT, header::read_request(&mut stream)).await {
            Ok(Ok(request)) => request,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "bad stream header");
                let _ = header::write_status(&mut stream, Status::BadRequest, None).await;
                return;
            }
            Err(_elapsed) => {
                tracing::debug!(%peer, "no stream header in time");
                return;
            }
        };
    let allowed = grant.allows(&request.addr);
    match request.kind {
        Kind::Connect | Kind::Socks if !allowed => {
            tracing::info!(%peer, target = %request.addr, "target not granted by --authfile");
            let _ = header::write_status(&mut stream, Status::Denied, None).await;
        }
        Kind::Connect => forward::connect_and_splice(stream, request.addr, peer).await,
        Kind::Socks if shared.socks => {
            forward::connect_and_splice(stream, request.addr, peer).await;
        }
        Kind::Listen if shared.reverse => reverse::listen(stream, request.addr, mux, peer).await,
        Kind::Socks | Kind::Listen | Kind::Reverse => {
            tracing::info!(%peer, kind = ?request.kind, addr = %request.addr, "stream denied (see --socks, --reverse)");
            let _ = header::write_status(&mut stream, Status::Denied, None).await;
        }
    }
}
