//! The client's tunnel: reaching the server ([`Dialer`]: TCP, directly or
//! through `--proxy`, then TLS for an `https` URL), opening it ([`open`]), telling which failures are
//! worth a retry ([`Failure`]), the backoff between attempts ([`Backoff`]),
//! and the tunnel currently up ([`Current`]), which every local connection
//! reads when it arrives.

use std::{io, time::Duration};

use http::{header::AUTHORIZATION, StatusCode};
use mux_h2::{ConnectError, Connector, H2Conn};
use mux_yamux_lite::{Connection, Role};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::watch,
};

use crate::{
    cli::{ClientArgs, ModeArg},
    mux_config,
    proxy::{Proxy, ProxyError},
    server::SERVER_HEADER,
    tls::{self, ClientTls},
};

/// How long opening the tunnel (TCP, HTTP, the server's answer) may take.
pub(crate) const TUNNEL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a local connection waits for a tunnel to be up.
pub(crate) const WAIT_FOR_TUNNEL: Duration = Duration::from_secs(30);

/// The first wait before a new attempt; it doubles up to
/// `--max-retry-interval`.
pub(crate) const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The tunnel currently up, if any, as the local listeners see it.
#[derive(Debug, Clone)]
pub(crate) struct Current(pub(crate) watch::Receiver<Option<Connection>>);

impl Current {
    /// The tunnel, waiting up to [`WAIT_FOR_TUNNEL`] for one.
    pub(crate) async fn get(&mut self) -> io::Result<Connection> {
        let waited = tokio::time::timeout(WAIT_FOR_TUNNEL, self.0.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(current)) => current
                .clone()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no tunnel")),
            Ok(Err(_closed)) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the client is stopping",
            )),
            Err(_elapsed) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no tunnel came up in time",
            )),
        }
    }
}

/// How a failure to open the tunnel bears on trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Trying again cannot help (refused credentials, a bad URL, a server
    /// that is not a mux-tunnel server).
    Never,
    /// Something answered, but not as a mux-tunnel server would: fatal on
    /// the first attempt (a wrong URL), retried once a tunnel has been up
    /// (a server restarting behind a proxy, say).
    IfEverConnected,
    /// The server is not reachable (yet): try again.
    Always,
}

/// Why the tunnel did not open: one line for the user, and whether to retry.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Failure {
    /// The line to print.
    pub(crate) message: String,
    /// Whether to retry.
    pub(crate) retry: Retry,
}

impl Failure {
    fn new(retry: Retry, message: String) -> Self {
        Self { message, retry }
    }
}

/// How the client reaches its server: the URL's host and port, TLS for an
/// `https` URL, and the `mux_h2` connector (mode, credentials, extra
/// headers) that opens the tunnel over the connection.
#[derive(Debug)]
pub(crate) struct Dialer {
    connector: Connector,
    url: String,
    host: String,
    port: u16,
    tls: Option<ClientTls>,
    proxy: Option<Proxy>,
}

impl Dialer {
    /// The dialer for `args`.
    pub(crate) fn new(args: &ClientArgs) -> Result<Self, Failure> {
        let never = |message: String| Failure::new(Retry::Never, message);
        let url = args.url.clone();
        let uri: http::Uri = url.parse().map_err(|e| never(format!("{url}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(never(format!(
                    "{url}: the URL must start with http:// or https://"
                )))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| never(format!("{url}: the URL names no host")))?;
        // The resolver and TLS server names want an IPv6 literal bare.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let alpn: &[u8] = match args.mode {
                ModeArg::Upgrade => b"http/1.1",
                ModeArg::Connect | ModeArg::Post => b"h2",
            };
            let tls = ClientTls::new(args.fingerprint, alpn)
                .map_err(|e| never(format!("cannot set up TLS: {e:#}")))?;
            Some(tls)
        } else {
            if args.fingerprint.is_some() {
                return Err(never(format!("{url}: --fingerprint needs an https:// URL")));
            }
            None
        };
        let mut connector = Connector::new().mode(args.mode.into());
        if let Some(credentials) = &args.auth {
            let value = credentials
                .header_value()
                .map_err(|e| never(format!("credentials cannot go in a header: {e}")))?;
            connector = connector.header(AUTHORIZATION, value);
        }
        for (name, value) in &args.headers {
            connector = connector.header(name.clone(), value.clone());
        }
        Ok(Self {
            connector,
            url,
            host,
            port,
            tls,
            proxy: args.proxy.clone(),
        })
    }

    /// Connects to the server (directly or through the proxy), runs TLS if
    /// the URL asks for it, and opens the HTTP exchange.
    async fn open_exchange(&self) -> Result<(H2Conn, http::response::Parts), Failure> {
        let url = &self.url;
        if let Some(proxy) = &self.proxy {
            let io = proxy.connect(&self.host, self.port).await.map_err(|e| {
                let retry = match &e {
                    ProxyError::Io { .. } => Retry::Always,
                    ProxyError::Refused { status, .. }
                        if *status == StatusCode::PROXY_AUTHENTICATION_REQUIRED =>
                    {
                        Retry::Never
                    }
                    ProxyError::Refused { status, .. } if status.is_server_error() => Retry::Always,
                    ProxyError::Refused { .. } => Retry::IfEverConnected,
                };
                Failure::new(retry, format!("{url}: {e}"))
            })?;
            return self.over(io).await;
        }
        let addr = format!("{}:{}", self.host, self.port);
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                Failure::new(
                    Retry::Always,
                    format!("{url}: cannot connect to {addr}: {e}"),
                )
            })?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        self.over(tcp).await
    }

    /// TLS if the URL asks for it, then the HTTP exchange, over `io`.
    async fn over<T>(&self, io: T) -> Result<(H2Conn, http::response::Parts), Failure>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let url = self.url.as_str();
        let opened = match &self.tls {
            None => self.connector.connect_over(io, url).await,
            Some(tls) => {
                let session = tls.handshake(io, &self.host).await.map_err(|e| {
                    let retry = if tls::is_certificate_error(&e) {
                        Retry::Never
                    } else if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                        Retry::IfEverConnected
                    } else {
                        Retry::Always
                    };
                    Failure::new(
                        retry,
                        format!("{url}: TLS handshake failed: {}", tls::describe(&e)),
                    )
                })?;
                self.connector.connect_over(session, url).await
            }
        };
        opened.map_err(|e| classify(url, e))
    }
}

/// Opens the HTTP exchange and the mux connection over it.
pub(crate) async fn open(dialer: &Dialer, args: &ClientArgs) -> Result<Connection, Failure> {
    let url = &args.url;
    let opened = tokio::time::timeout(TUNNEL_TIMEOUT, dialer.open_exchange())
        .await
        .map_err(|_| {
            Failure::new(
                Retry::Always,
                format!("{url}: no answer within {TUNNEL_TIMEOUT:?}"),
            )
        })?;
    let (conn, response) = opened?;
    if response.headers.get(SERVER_HEADER).is_none() {
        return Err(Failure::new(
            Retry::Never,
            format!("{url}: the server accepted the request but is not a mux-tunnel server"),
        ));
    }
    Ok(Connection::new(
        conn,
        Role::Client,
        mux_config(args.keepalive),
    ))
}

/// The user's line and the retry class of a connect error.
fn classify(url: &str, e: ConnectError) -> Failure {
    match e {
        ConnectError::Status { status, .. }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
        {
            Failure::new(
                Retry::Never,
                format!("{url}: the server refused the credentials (HTTP {status}); check --auth"),
            )
        }
        ConnectError::Status { status, .. } => Failure::new(
            Retry::IfEverConnected,
            format!(
                "{url}: the server refused the tunnel with HTTP {status}: not a mux-tunnel \
                 server, or --mode does not suit what is in between"
            ),
        ),
        ConnectError::Connect { .. } => {
            Failure::new(Retry::Always, format!("{url}: cannot open the tunnel: {e}"))
        }
        ConnectError::InvalidUrl(_)
        | ConnectError::UnsupportedScheme(_)
        | ConnectError::TlsNotEnabled
        | ConnectError::InvalidRequest(_) => Failure::new(Retry::Never, format!("{url}: {e}")),
        _ => Failure::new(
            Retry::IfEverConnected,
            format!("{url}: cannot open the tunnel: {e}"),
        ),
    }
}

/// Exponential backoff: [`FIRST_RETRY`], doubling up to a ceiling.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff whose waits grow up to `max`.
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            next: FIRST_RETRY.min(max),
            max,
        }
    }

    /// The next wait.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// Starts over after a success.
    pub(crate) fn reset(&mut self) {
        self.next = FIRST_RETRY.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(500));
        let waits: Vec<_> = (0..5).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_wait(), FIRST_RETRY);
        assert_eq!(Backoff::new(Duration::ZERO).next_wait(), Duration::ZERO);
    }
}
