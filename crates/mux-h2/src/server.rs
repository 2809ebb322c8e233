//! The server side: [`accept`] turns one request into a tunnel, and
//! [`serve`] runs a whole hyper server that does so for every request.

use std::{convert::Infallible, future::Future, io, net::SocketAddr};

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use mux_core::RwConn;
use tokio::net::TcpListener;

use crate::{
    error::{conn_end_error, AcceptError},
    io::{
        body_tunnel, empty_body, full_body, upgraded_tunnel, ConnEnd, H2Conn, TunnelBody,
        TunnelKind, UpgradeSource, CONNECTION_WINDOW, MAX_FRAME_SIZE, STREAM_WINDOW,
    },
    UPGRADE_PROTOCOL,
};

/// The addresses of the connection a request arrived on.
///
/// [`serve`] inserts this into each request's extensions and [`accept`]
/// copies it onto the [`H2Conn`] (`local_addr`/`remote_addr`). A custom
/// server can insert it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnAddrs {
    /// The server's address.
    pub local: Option<SocketAddr>,
    /// The client's address.
    pub remote: Option<SocketAddr>,
}

/// The end of the connection a request arrived on, which [`serve`] fills
/// in so that its tunnels can tell why a write failed.
#[derive(Clone)]
struct ConnEndExt(ConnEnd);

/// Turns `req` into a tunnel, like Go's `h2conn.Accept`.
///
/// Send the returned response at once (return it from the hyper service):
/// the request body is never awaited, and for CONNECT and HTTP/1.1 upgrades
/// the tunnel's I/O becomes usable only after the response has gone out. Its
/// reads and writes wait until then.
///
/// | request | tunnel | response |
/// |---|---|---|
/// | HTTP/2 CONNECT (plain or extended) | hyper's upgraded stream ([`TunnelKind::H2Connect`]) | `200`, empty body |
/// | HTTP/2, any other method | request body in, response body out ([`TunnelKind::H2Body`]) | `200`, streaming body |
/// | HTTP/1.1 with `Upgrade: mux-tunnel`, `Connection: upgrade` | the taken-over connection ([`TunnelKind::Http1Upgrade`]) | `101 Switching Protocols` |
/// | other HTTP/1.1 | refused: [`AcceptError::UpgradeRequired`] | answer with [`AcceptError::to_response`] (426) |
/// | HTTP/1.0 and older | refused: [`AcceptError::VersionNotSupported`] | 505 |
///
/// The HTTP/1.1 upgrade needs a server connection built with upgrades
/// enabled (hyper's `serve_connection_with_upgrades`), as [`serve`] does.
/// A custom server should also raise hyper's HTTP/2 connection window to
/// [`CONNECTION_WINDOW`] (see there why) and enable extended CONNECT.
///
/// The request body may be hyper's `Incoming` or any other body type, such
/// as axum's `Body` (the body is only read in body mode; CONNECT and the
/// HTTP/1.1 upgrade need hyper's upgrade extension, which frameworks keep in
/// the request's extensions).
///
/// # Errors
/// When the request cannot carry a full-duplex tunnel; nothing was consumed
/// that the error response needs.
pub fn accept<B>(mut req: Request<B>) -> Result<(Response<TunnelBody>, H2Conn), AcceptError>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addrs = req.extensions().get::<ConnAddrs>().copied();
    let conn_end = req
        .extensions()
        .get::<ConnEndExt>()
        .map(|ext| ext.0.clone());
    let version = req.version();
    let (response, reader, writer) = if version == Version::HTTP_2 {
        if req.method() == Method::CONNECT {
            // hyper hands a CONNECT stream's data only to the upgrade API,
            // never to the request body.
            let on_upgrade = hyper::upgrade::on(&mut req);
            let (reader, writer) = upgraded_tunnel(
                TunnelKind::H2Connect,
                UpgradeSource::Pending(on_upgrade),
                conn_end,
            );
            (Response::new(empty_body()), reader, writer)
        } else {
            let (pending, body) = body_tunnel(conn_end);
            let (reader, writer) = pending.finish(req.into_body());
            (Response::new(body), reader, writer)
        }
    } else if version == Version::HTTP_11 {
        if !wants_tunnel_upgrade(req.headers()) {
            tracing::debug!(method = %req.method(), uri = %req.uri(), "mux-h2: HTTP/1.1 request without tunnel upgrade");
            return Err(AcceptError::UpgradeRequired);
        }
        let on_upgrade = hyper::upgrade::on(&mut req);
        let (reader, writer) = upgraded_tunnel(
            TunnelKind::Http1Upgrade,
            UpgradeSource::Pending(on_upgrade),
            conn_end,
        );
        let mut response = Response::new(empty_body());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        (response, reader, writer)
    } else {
        tracing::debug!(?version, "mux-h2: request version cannot carry a tunnel");
        return Err(AcceptError::VersionNotSupported(version));
    };
    tracing::debug!(kind = ?reader.kind(), ?addrs, "mux-h2: tunnel accepted");
    let mut conn = RwConn::new(reader, writer);
    if let Some(addrs) = addrs {
        conn = conn.with_addrs(addrs.local, addrs.remote);
    }
    Ok((response, conn))
}

impl AcceptError {
    /// A complete error response: the status, the upgrade offer for a 426
    /// (as RFC 9110 asks), and this message as a plain-text body.
    pub fn to_response(&self) -> Response<TunnelBody> {
        let mut response = Response::new(full_body(format!("{self}\n")));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if matches!(self, Self::UpgradeRequired) {
            headers.insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
        response
    }
}

/// Whether `headers` ask for an upgrade to [`UPGRADE_PROTOCOL`]
/// (`Connection: upgrade` and `Upgrade: mux-tunnel`, tokens compared
/// case-insensitively).
fn wants_tunnel_upgrade(headers: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token(header::CONNECTION, "upgrade") && has_token(header::UPGRADE, UPGRADE_PROTOCOL)
}

/// Runs an HTTP/1.1 + HTTP/2 (h2c) server on `listener` that turns every
/// request into a tunnel with [`accept`] and spawns `handler` on it.
///
/// Requests `accept` refuses get its error response. Extended CONNECT
/// (RFC 8441) is enabled, and HTTP/2 uses [`STREAM_WINDOW`] and
/// [`CONNECTION_WINDOW`]. Each TCP connection and each handler runs on its
/// own task, so dropping this future stops accepting but leaves existing
/// tunnels running. Must run inside a tokio runtime.
///
/// For routing on the path or on headers, write a hyper service that calls
/// [`accept`] instead.
///
/// # Errors
/// Only when accepting a TCP connection fails with something other than a
/// per-connection error (an aborted or reset handshake is skipped).
pub async fn serve<F, Fut>(listener: TcpListener, handler: F) -> io::Result<()>
where
    F: Fn(H2Conn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let builder = server_builder();
    loop {
        let Some((tcp, addrs)) = accept_tcp(&listener).await? else {
            continue;
        };
        tokio::spawn(serve_connection(
            builder.clone(),
            tcp,
            addrs,
            handler.clone(),
        ));
    }
}

/// hyper-util's HTTP/1.1 + HTTP/2 server, with extended CONNECT enabled
/// and this crate's flow-control windows.
pub(crate) fn server_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .enable_connect_protocol()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE);
    builder
}

/// Accepts one TCP connection; `None` after an error that concerns only
/// that connection.
pub(crate) async fn accept_tcp(
    listener: &TcpListener,
) -> io::Result<Option<(tokio::net::TcpStream, ConnAddrs)>> {
    let (tcp, remote) = match listener.accept().await {
        Ok(accepted) => accepted,
        Err(e) if is_per_connection(&e) => {
            tracing::debug!(error = %e, "mux-h2: accept failed for one connection");
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(error = %e, "mux-h2: accept failed; server stops");
            return Err(e);
        }
    };
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "mux-h2: cannot set TCP_NODELAY");
    }
    let addrs = ConnAddrs {
        local: tcp.local_addr().ok(),
        remote: Some(remote),
    };
    Ok(Some((tcp, addrs)))
}

/// Serves one connection, turning each request into a tunnel for `handler`.
pub(crate) async fn serve_connection<I, F, Fut>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    addrs: ConnAddrs,
    handler: F,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(H2Conn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let conn_end = ConnEnd::default();
    let ext = ConnEndExt(conn_end.clone());
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(addrs);
        req.extensions_mut().insert(ext.clone());
        let response = match accept(req) {
            Ok((response, conn)) => {
                tokio::spawn(handler(conn));
                response
            }
            Err(e) => e.to_response(),
        };
        std::future::ready(Ok::<_, Infallible>(response))
    });
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await
    {
        tracing::debug!(error = %e, remote = ?addrs.remote, "mux-h2: connection ended with error");
        conn_end.finish(Some(conn_end_error(&*e)));
        return;
    }
    conn_end.finish(None);
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
