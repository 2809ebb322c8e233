//! The client side: [`connect`] and the [`Connector`] builder open a tunnel,
//! on a new connection or on a shared HTTP/2 [`SendRequest`].

mod go_away;

use std::sync::Arc;

use http::{
    header, uri::Authority, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri,
    Version,
};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mux_core::RwConn;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use crate::{
    error::{conn_end_error, ConnectError},
    io::{
        body_tunnel, empty_body, upgraded_tunnel, ConnEnd, H2Conn, TunnelBody, TunnelKind,
        UpgradeSource, CONNECTION_WINDOW, MAX_FRAME_SIZE, STREAM_WINDOW,
    },
    UPGRADE_PROTOCOL,
};
use go_away::{GoAwayWatch, GoAways};

/// How a [`Connector`] asks for a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Mode {
    /// An HTTP/2 CONNECT request, carried by hyper's upgrade API
    /// ([`TunnelKind::H2Connect`]). Plain CONNECT by default, or extended
    /// CONNECT with [`Connector::extended_connect`].
    #[default]
    Connect,
    /// An HTTP/2 POST whose request and response bodies carry the tunnel
    /// ([`TunnelKind::H2Body`]); the only mode whose resets carry a code to
    /// the peer.
    Post,
    /// HTTP/1.1 `Upgrade: mux-tunnel`, for paths without HTTP/2
    /// ([`TunnelKind::Http1Upgrade`]). Needs its own connection.
    Http1Upgrade,
}

/// Opens tunnels, like Go's `h2conn.Client`: a mode, extra headers and, with
/// the `tls` feature, a TLS configuration.
///
/// `http` URLs use HTTP/2 with prior knowledge (h2c); `https` URLs (feature
/// `tls`) negotiate `h2` (or `http/1.1` in upgrade mode) with ALPN. No
/// timeout is applied: wrap the call in `tokio::time::timeout` if needed.
#[derive(Debug, Clone, Default)]
pub struct Connector {
    mode: Mode,
    headers: HeaderMap,
    protocol: Option<String>,
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// Opens a tunnel to `url` with the default [`Connector`]: HTTP/2 CONNECT
/// over a new connection.
///
/// # Errors
/// See [`ConnectError`]; a refusal carries the status.
pub async fn connect<U>(url: U) -> Result<(H2Conn, http::response::Parts), ConnectError>
where
    U: TryInto<Uri>,
    U::Error: Into<http::Error>,
{
    Connector::new().connect(url).await
}

/// Performs an HTTP/2 prior-knowledge handshake over `io` and spawns the
/// task driving the connection, for [`Connector::connect_with`]. The
/// connection uses [`STREAM_WINDOW`] and [`CONNECTION_WINDOW`].
///
/// The connection lives while the returned sender, a clone of it or a tunnel
/// opened on it does.
///
/// # Errors
/// [`ConnectError::Handshake`] when the handshake fails.
pub async fn handshake<T>(io: T) -> Result<SendRequest<TunnelBody>, ConnectError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    Ok(watched_handshake(io).await?.0)
}

/// [`handshake`], and where the connection's I/O records why it ended.
async fn watched_handshake<T>(io: T) -> Result<(SendRequest<TunnelBody>, ConnEnd), ConnectError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_end = ConnEnd::default();
    let go_aways = Arc::new(GoAways::default());
    let io = GoAwayWatch::new(io, go_aways.clone(), conn_end.clone());
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_SIZE)
        .handshake(TokioIo::new(io))
        .await
        .map_err(ConnectError::Handshake)?;
    let end = conn_end.clone();
    // This future dispatches requests; it ends with `Ok` once every
    // `SendRequest` is gone, while the connection may still carry tunnels.
    // The connection's own end is recorded by `GoAwayWatch`.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "mux-h2: HTTP/2 client connection ended with error");
            end.finish(Some(
                go_aways.conn_error().unwrap_or_else(|| conn_end_error(&e)),
            ));
        }
    });
    Ok((sender, conn_end))
}

/// A parsed tunnel URL.
struct Target {
    uri: Uri,
    authority: Authority,
    host: String,
    port: u16,
    tls: bool,
}

impl Target {
    fn parse<U>(url: U) -> Result<Self, ConnectError>
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        let uri: Uri = url
            .try_into()
            .map_err(|e| ConnectError::InvalidUrl(e.into().to_string()))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(ConnectError::UnsupportedScheme(other.to_owned())),
            None => return Err(ConnectError::InvalidUrl(format!("{uri}: no scheme"))),
        };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| ConnectError::InvalidUrl(format!("{uri}: no host")))?;
        // `Uri::host` keeps the brackets of an IPv6 literal; the resolver
        // and TLS server names want it bare.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // An absolute URI without a path would be sent as an empty `:path`.
        let uri = if uri.path_and_query().is_none() {
            let mut parts = uri.into_parts();
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
            Uri::from_parts(parts).map_err(|e| ConnectError::InvalidUrl(e.to_string()))?
        } else {
            uri
        };
        Ok(Self {
            uri,
            authority,
            host,
            port,
            tls,
        })
    }
}

impl Connector {
    /// A connector for [`Mode::Connect`] with no extra header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how the tunnel is requested.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Adds a header to every tunnel request (for example authorization).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Adds headers to every tunnel request.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers.extend(headers);
        self
    }

    /// In [`Mode::Connect`], sends an extended CONNECT (RFC 8441) with this
    /// `:protocol` and the URL's path, instead of a plain CONNECT that names
    /// only the authority. The server must enable it ([`serve`](crate::serve)
    /// does).
    pub fn extended_connect(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Sets the rustls configuration for `https` URLs; its ALPN list is
    /// replaced by the one the mode needs. Without it, `https` uses the
    /// Mozilla roots from `webpki-roots`.
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Opens a tunnel to `url` over a new connection.
    ///
    /// # Errors
    /// See [`ConnectError`]; a refusal carries the status.
    pub async fn connect<U>(&self, url: U) -> Result<(H2Conn, http::response::Parts), ConnectError>
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        let target = Target::parse(url)?;
        let addr = format!("{}:{}", target.host, target.port);
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|source| ConnectError::Connect {
                addr: addr.clone(),
                source,
            })?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "mux-h2: cannot set TCP_NODELAY");
        }
        let addrs = (tcp.local_addr().ok(), tcp.peer_addr().ok());
        tracing::debug!(%addr, mode = ?self.mode, "mux-h2: opening tunnel");
        let (conn, parts) = if target.tls {
            self.connect_tls(tcp, &target).await?
        } else {
            self.open_over(tcp, &target).await?
        };
        Ok((conn.with_addrs(addrs.0, addrs.1), parts))
    }

    #[cfg(not(feature = "tls"))]
    async fn connect_tls(
        &self,
        _tcp: TcpStream,
        _target: &Target,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError> {
        Err(ConnectError::TlsNotEnabled)
    }

    #[cfg(feature = "tls")]
    async fn connect_tls(
        &self,
        tcp: TcpStream,
        target: &Target,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError> {
        let alpn: &[u8] = match self.mode {
            Mode::Http1Upgrade => b"http/1.1",
            _ => b"h2",
        };
        let tls = crate::tls::connect(tcp, &target.host, self.tls.clone(), alpn).await?;
        self.open_over(tls, target).await
    }

    /// Opens a tunnel on an existing HTTP/2 connection (see [`handshake`]),
    /// so one TCP connection carries many tunnels. `url` supplies the
    /// scheme, authority and path of the request; nothing is dialled.
    ///
    /// # Errors
    /// See [`ConnectError`]; [`ConnectError::NeedsOwnConnection`] in
    /// [`Mode::Http1Upgrade`].
    pub async fn connect_with<U>(
        &self,
        sender: &SendRequest<TunnelBody>,
        url: U,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError>
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        let target = Target::parse(url)?;
        self.open_h2(sender, &target, None).await
    }

    /// Opens a tunnel over `io`, a connection the caller has already set
    /// up: a TCP connection through an HTTP CONNECT proxy, a TLS session
    /// configured by the caller, an in-memory pipe. Works in every [`Mode`];
    /// `io` carries this one tunnel (in the HTTP/2 modes, an HTTP/2
    /// connection of its own is run over it).
    ///
    /// Nothing is dialled and no TLS is added, whatever the scheme: `url`
    /// only supplies the request's scheme, authority and path, as
    /// [`connect`](Self::connect) would send them.
    ///
    /// # Errors
    /// See [`ConnectError`]; a refusal carries the status.
    pub async fn connect_over<T, U>(
        &self,
        io: T,
        url: U,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        let target = Target::parse(url)?;
        tracing::debug!(url = %target.uri, mode = ?self.mode, "mux-h2: opening tunnel over a given connection");
        self.open_over(io, &target).await
    }

    async fn open_over<T>(
        &self,
        io: T,
        target: &Target,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match self.mode {
            Mode::Http1Upgrade => self.open_h1_upgrade(io, target).await,
            Mode::Connect | Mode::Post => {
                let (sender, conn_end) = watched_handshake(io).await?;
                self.open_h2(&sender, target, Some(conn_end)).await
            }
        }
    }

    fn request(
        &self,
        method: Method,
        uri: Uri,
        body: TunnelBody,
    ) -> Result<Request<TunnelBody>, ConnectError> {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(headers) = builder.headers_mut() {
            headers.extend(self.headers.clone());
        }
        builder.body(body).map_err(ConnectError::InvalidRequest)
    }

    async fn open_h2(
        &self,
        sender: &SendRequest<TunnelBody>,
        target: &Target,
        conn_end: Option<ConnEnd>,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError> {
        let mut sender = sender.clone();
        sender.ready().await.map_err(ConnectError::Request)?;
        match self.mode {
            Mode::Http1Upgrade => Err(ConnectError::NeedsOwnConnection),
            Mode::Post => {
                let (pending, body) = body_tunnel(conn_end);
                let mut req = self.request(Method::POST, target.uri.clone(), body)?;
                *req.version_mut() = Version::HTTP_2;
                let response = sender
                    .send_request(req)
                    .await
                    .map_err(ConnectError::Request)?;
                check_status(&response, StatusCode::OK)?;
                let (parts, incoming) = response.into_parts();
                let (reader, writer) = pending.finish(incoming);
                Ok((RwConn::new(reader, writer), parts))
            }
            Mode::Connect => {
                let uri = match &self.protocol {
                    Some(_) => target.uri.clone(),
                    // Plain CONNECT (RFC 9113 8.5) carries only `:authority`.
                    None => Uri::from(target.authority.clone()),
                };
                let mut req = self.request(Method::CONNECT, uri, empty_body())?;
                *req.version_mut() = Version::HTTP_2;
                if let Some(protocol) = &self.protocol {
                    req.extensions_mut()
                        .insert(hyper::ext::Protocol::from(protocol.as_str()));
                }
                let response = sender
                    .send_request(req)
                    .await
                    .map_err(ConnectError::Request)?;
                into_upgraded(response, StatusCode::OK, TunnelKind::H2Connect, conn_end).await
            }
        }
    }

    async fn open_h1_upgrade<T>(
        &self,
        io: T,
        target: &Target,
    ) -> Result<(H2Conn, http::response::Parts), ConnectError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(ConnectError::Handshake)?;
        let conn_end = ConnEnd::default();
        let end = conn_end.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "mux-h2: HTTP/1.1 client connection ended with error");
                end.finish(Some(conn_end_error(&e)));
                return;
            }
            end.finish(None);
        });
        // HTTP/1.1 sends the origin form; the authority goes in `Host`.
        let path = target
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let origin: Uri = path
            .parse()
            .map_err(|e: http::uri::InvalidUri| ConnectError::InvalidUrl(e.to_string()))?;
        let mut req = self.request(Method::GET, origin, empty_body())?;
        let host = HeaderValue::from_str(target.authority.as_str())
            .map_err(|e| ConnectError::InvalidRequest(e.into()))?;
        let headers = req.headers_mut();
        headers.entry(header::HOST).or_insert(host);
        headers.insert(header::UPGRADE, HeaderValue::from_static(UPGRADE_PROTOCOL));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        let response = sender
            .send_request(req)
            .await
            .map_err(ConnectError::Request)?;
        into_upgraded(
            response,
            StatusCode::SWITCHING_PROTOCOLS,
            TunnelKind::Http1Upgrade,
            Some(conn_end),
        )
        .await
    }
}

/// Checks that `response` accepted the tunnel and turns the upgraded
/// connection into an [`H2Conn`].
async fn into_upgraded<B>(
    mut response: http::Response<B>,
    expected: StatusCode,
    kind: TunnelKind,
    conn_end: Option<ConnEnd>,
) -> Result<(H2Conn, http::response::Parts), ConnectError> {
    check_status(&response, expected)?;
    let upgraded = hyper::upgrade::on(&mut response)
        .await
        .map_err(ConnectError::Upgrade)?;
    let (reader, writer) = upgraded_tunnel(kind, UpgradeSource::Ready(upgraded), conn_end);
    Ok((RwConn::new(reader, writer), response.into_parts().0))
}

fn check_status<B>(response: &http::Response<B>, expected: StatusCode) -> Result<(), ConnectError> {
    let status = response.status();
    if status == expected {
        return Ok(());
    }
    tracing::debug!(%status, "mux-h2: tunnel refused");
    Err(ConnectError::Status {
        status,
        headers: Box::new(response.headers().clone()),
    })
}
