//! `mux-tunnel client`: binds the local listeners, opens the tunnel, and
//! turns every accepted local connection into one stream.
//!
//! The current tunnel lives in a [`Tunnel`] (a watch channel) that the
//! listeners' tasks read when a connection arrives; the task that opened the
//! tunnel serves the streams the server opens and notices when the tunnel
//! ends. A stream starts with the header of [`crate::header`]: the client
//! names the target, the server answers, and only after an `Ok` are bytes
//! copied ([`forward::splice`]); otherwise the local connection is reset.

use std::{collections::HashMap, io, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{anyhow, Context as _};
use http::{header::AUTHORIZATION, StatusCode};
use mux_h2::{ConnectError, Connector};
use mux_yamux_lite::{Connection, Role, Stream};
use tokio::{
    io::AsyncReadExt as _,
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    cli::ClientArgs,
    forward,
    header::{self, Kind, Status, HEADER_TIMEOUT},
    mux_config,
    remote::{HostPort, Remote},
    server::SERVER_HEADER,
    socks,
};

/// How long opening the tunnel (TCP, HTTP, the server's answer) may take.
const TUNNEL_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a local connection waits for a tunnel to be up.
const WAIT_FOR_TUNNEL: Duration = Duration::from_secs(30);

/// The current tunnel, if one is up.
#[derive(Debug, Clone)]
struct Tunnel(watch::Receiver<Option<Connection>>);

impl Tunnel {
    /// The tunnel, waiting up to [`WAIT_FOR_TUNNEL`] for one.
    async fn get(&mut self) -> io::Result<Connection> {
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

/// Runs the client until the tunnel ends (an error) or stdio ends (`Ok`).
pub(crate) async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let connector = connector(&args)?;
    let (publish, current) = watch::channel(None);
    let tunnel = Tunnel(current);
    let mut stdio = None;
    let mut reverse = Vec::new();
    for remote in &args.remotes {
        match remote {
            Remote::Forward { listen, target } => {
                let listener = bind(listen, remote).await?;
                announce(&format!("forward {} => {target}", listener.local_addr()?));
                tokio::spawn(accept_loop(listener, Some(target.clone()), tunnel.clone()));
            }
            Remote::Socks { listen } => {
                let listener = bind(listen, remote).await?;
                announce(&format!("socks {}", listener.local_addr()?));
                tokio::spawn(accept_loop(listener, None, tunnel.clone()));
            }
            Remote::Reverse { listen, target } => reverse.push((listen.clone(), target.clone())),
            Remote::Stdio { target } => {
                if stdio.replace(target.clone()).is_some() {
                    return Err(anyhow!("only one stdio remote may be given"));
                }
            }
        }
    }
    let mux = open_tunnel(&connector, &args).await?;
    let routes = Arc::new(register_reverse(&mux, &reverse, stdio.is_none()).await?);
    publish.send_replace(Some(mux.clone()));
    tracing::info!(url = %args.url, "tunnel up");
    if let Some(target) = stdio {
        tokio::spawn(serve_reverse_streams(mux, routes));
        return run_stdio(tunnel, target).await;
    }
    announce("connected");
    let end = serve_reverse_streams(mux, routes).await;
    publish.send_replace(None);
    Err(anyhow!("tunnel to {} lost: {end}", args.url))
}

/// Registers each reverse remote on the server: one [`Kind::Listen`]
/// stream each, kept open as long as the listener should live. Returns the
/// map from the address the server bound to the local target.
async fn register_reverse(
    mux: &Connection,
    reverse: &[(HostPort, HostPort)],
    print: bool,
) -> anyhow::Result<HashMap<HostPort, HostPort>> {
    let mut routes = HashMap::new();
    for (listen, target) in reverse {
        let remote = format!("R:{listen}");
        let mut control = match open_stream(mux, Kind::Listen, listen).await {
            Ok(control) => control,
            Err(OpenError::Status(Status::Denied)) => {
                return Err(anyhow!(
                    "{remote}: the server does not allow reverse remotes (start it with --reverse)"
                ))
            }
            Err(OpenError::Status(_)) => {
                return Err(anyhow!("{remote}: the server cannot listen on {listen}"))
            }
            Err(e) => return Err(anyhow!("{remote}: {e}")),
        };
        let bound = tokio::time::timeout(HEADER_TIMEOUT, header::read_bound(&mut control))
            .await
            .map_err(|_| anyhow!("{remote}: no answer from the server"))?
            .with_context(|| format!("{remote}: bad answer from the server"))?;
        tracing::info!(%bound, %target, "reverse remote registered");
        if print {
            announce(&format!("reverse {bound} => {target}"));
        }
        routes.insert(bound, target.clone());
        // The server listens while this stream is open: hold it until the
        // tunnel ends.
        tokio::spawn(async move {
            let mut sink = [0u8; 64];
            while matches!(control.read(&mut sink).await, Ok(n) if n > 0) {}
        });
    }
    Ok(routes)
}

/// Serves the streams the server opens (reverse connections) until the
/// tunnel ends, and returns why it ended.
async fn serve_reverse_streams(
    mux: Connection,
    routes: Arc<HashMap<HostPort, HostPort>>,
) -> mux_core::ConnError {
    loop {
        match mux.accept_stream().await {
            Ok(stream) => {
                tokio::spawn(serve_reverse(stream, routes.clone()));
            }
            Err(e) => return e,
        }
    }
}

/// One reverse connection: connects to the local target registered for the
/// server's listener, or refuses a listener this client did not register.
async fn serve_reverse(mut stream: Stream, routes: Arc<HashMap<HostPort, HostPort>>) {
    let request = tokio::time::timeout(HEADER_TIMEOUT, header::read_request(&mut stream)).await;
    let target = match request {
        Ok(Ok(header::Request {
            kind: Kind::Reverse,
            addr,
        })) => routes.get(&addr).cloned(),
        _ => None,
    };
    match target {
        Some(target) => forward::connect_and_splice(stream, target, "server").await,
        None => {
            tracing::warn!("the server opened a stream this client did not ask for");
            let _ = header::write_status(&mut stream, Status::Denied, None).await;
        }
    }
}

/// A stdout line the tests and scripts wait for. Not used with a stdio
/// remote, whose stdout is the connection.
#[allow(clippy::print_stdout, reason = "the documented client status lines")]
fn announce(line: &str) {
    println!("{line}");
}

/// The connector for `args`: mode, credentials, extra headers.
fn connector(args: &ClientArgs) -> anyhow::Result<Connector> {
    let mut connector = Connector::new().mode(args.mode.into());
    if let Some(credentials) = &args.auth {
        let value = credentials
            .header_value()
            .context("credentials cannot go in a header")?;
        connector = connector.header(AUTHORIZATION, value);
    }
    for (name, value) in &args.headers {
        connector = connector.header(name.clone(), value.clone());
    }
    Ok(connector)
}

/// Opens the HTTP exchange and the mux connection over it, with an error a
/// user can act on when it fails.
async fn open_tunnel(connector: &Connector, args: &ClientArgs) -> anyhow::Result<Connection> {
    let url = &args.url;
    let opened = tokio::time::timeout(TUNNEL_TIMEOUT, connector.connect(url.as_str()))
        .await
        .map_err(|_| anyhow!("{url}: no answer within {TUNNEL_TIMEOUT:?}"))?;
    let (conn, response) = match opened {
        Ok(opened) => opened,
        Err(ConnectError::Status { status, .. })
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN =>
        {
            return Err(anyhow!(
                "{url}: the server refused the credentials (HTTP {status}); check --auth"
            ));
        }
        Err(ConnectError::Status { status, .. }) => {
            return Err(anyhow!(
                "{url}: the server refused the tunnel with HTTP {status}: not a mux-tunnel \
                 server, or --mode does not match what is in between"
            ));
        }
        Err(e) => return Err(anyhow!("{url}: cannot open the tunnel: {e}")),
    };
    if response.headers.get(SERVER_HEADER).is_none() {
        return Err(anyhow!(
            "{url}: the server accepted the request but is not a mux-tunnel server"
        ));
    }
    Ok(Connection::new(
        conn,
        Role::Client,
        mux_config(args.keepalive),
    ))
}

/// Binds a local listener, with an error naming the REMOTE.
async fn bind(listen: &HostPort, remote: &Remote) -> anyhow::Result<TcpListener> {
    TcpListener::bind((listen.host.as_str(), listen.port))
        .await
        .with_context(|| format!("{remote}: cannot listen on {listen}"))
}

/// Accepts local connections and forwards each to `target`, or to the
/// target its SOCKS5 request names when `target` is `None`.
async fn accept_loop(listener: TcpListener, target: Option<HostPort>, tunnel: Tunnel) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let tunnel = tunnel.clone();
                match &target {
                    Some(target) => tokio::spawn(forward_one(tcp, peer, target.clone(), tunnel)),
                    None => tokio::spawn(socks_one(tcp, peer, tunnel)),
                };
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "accepting a local connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Forwards one local connection to `target`.
async fn forward_one(tcp: TcpStream, peer: SocketAddr, target: HostPort, mut tunnel: Tunnel) {
    let opened = match tunnel.get().await {
        Ok(mux) => open_stream(&mux, Kind::Connect, &target).await,
        Err(e) => Err(e.into()),
    };
    match opened {
        Ok(stream) => forward::splice_logged(tcp, stream, &peer, &target).await,
        Err(e) => {
            tracing::info!(%peer, %target, error = %e, "connection refused");
            forward::refuse(tcp);
        }
    }
}

/// Serves one SOCKS5 client: its CONNECT target goes to the server, whose
/// answer becomes the SOCKS reply.
async fn socks_one(mut tcp: TcpStream, peer: SocketAddr, mut tunnel: Tunnel) {
    let target = match tokio::time::timeout(HEADER_TIMEOUT, socks::accept(&mut tcp)).await {
        Ok(Ok(target)) => target,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "SOCKS handshake failed");
            return;
        }
        Err(_elapsed) => {
            tracing::info!(%peer, "SOCKS handshake timed out");
            return;
        }
    };
    let opened = match tunnel.get().await {
        Ok(mux) => open_stream(&mux, Kind::Socks, &target).await,
        Err(e) => Err(e.into()),
    };
    let reply = match &opened {
        Ok(_) => socks::Reply::Succeeded,
        Err(OpenError::Status(status)) => socks::Reply::from(*status),
        Err(_) => socks::Reply::GeneralFailure,
    };
    if let Err(e) = &opened {
        tracing::info!(%peer, %target, error = %e, "SOCKS connection refused");
    }
    if socks::reply(&mut tcp, reply).await.is_err() {
        return;
    }
    if let Ok(stream) = opened {
        forward::splice_logged(tcp, stream, &peer, &target).await;
    }
}

/// Why a stream could not be used.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("cannot open a stream: {0}")]
    Mux(#[from] mux_core::ConnError),
    #[error("the server answered {0:?}")]
    Status(Status),
    #[error("the server did not answer within {HEADER_TIMEOUT:?}")]
    Timeout,
}

/// Opens a stream for `kind` and `target` and waits for the server's `Ok`.
async fn open_stream(mux: &Connection, kind: Kind, target: &HostPort) -> Result<Stream, OpenError> {
    let mut stream = mux.open_stream().await?;
    let request = header::Request {
        kind,
        addr: target.clone(),
    };
    header::write_request(&mut stream, &request).await?;
    match tokio::time::timeout(HEADER_TIMEOUT, header::read_status(&mut stream)).await {
        Ok(Ok(Status::Ok)) => Ok(stream),
        Ok(Ok(status)) => Err(OpenError::Status(status)),
        Ok(Err(e)) => Err(e.into()),
        Err(_elapsed) => Err(OpenError::Timeout),
    }
}

/// stdin and stdout as one connection to `target`; returns when both
/// directions end.
async fn run_stdio(mut tunnel: Tunnel, target: HostPort) -> anyhow::Result<()> {
    let mux = tunnel.get().await?;
    let stream = open_stream(&mux, Kind::Connect, &target)
        .await
        .with_context(|| format!("stdio => {target}"))?;
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    forward::splice(stdio, stream)
        .await
        .with_context(|| format!("stdio => {target}"))?;
    Ok(())
}
