//! `mux-tunnel client`: binds the local listeners, opens the tunnel, and
//! turns every accepted local connection into one stream.
//!
//! The current tunnel lives in a [`Tunnel`] (a watch channel) that the
//! listeners' tasks read when a connection arrives; the task that opened the
//! tunnel serves the streams the server opens and notices when the tunnel
//! ends. A stream starts with the header of [`crate::header`]: the client
//! names the target, the server answers, and only after an `Ok` are bytes
//! copied ([`forward::splice`]); otherwise the local connection is reset.

use std::{io, net::SocketAddr, time::Duration};

use anyhow::{anyhow, Context as _};
use http::{header::AUTHORIZATION, StatusCode};
use mux_h2::{ConnectError, Connector};
use mux_yamux_lite::{Connection, Role, Stream};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    cli::ClientArgs,
    forward,
    header::{self, Kind, Status},
    mux_config,
    remote::{HostPort, Remote},
    server::{HEADER_TIMEOUT, SERVER_HEADER},
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
    for remote in &args.remotes {
        match remote {
            Remote::Forward { listen, target } => {
                let listener = bind(listen, remote).await?;
                announce(&format!("forward {} => {target}", listener.local_addr()?));
                tokio::spawn(accept_loop(listener, target.clone(), tunnel.clone()));
            }
            Remote::Stdio { target } => {
                if stdio.replace(target.clone()).is_some() {
                    return Err(anyhow!("only one stdio remote may be given"));
                }
            }
            Remote::Socks { .. } | Remote::Reverse { .. } => {
                return Err(anyhow!("{remote}: not supported by this build"));
            }
        }
    }
    let mux = open_tunnel(&connector, &args).await?;
    publish.send_replace(Some(mux.clone()));
    tracing::info!(url = %args.url, "tunnel up");
    if let Some(target) = stdio {
        return run_stdio(tunnel, target).await;
    }
    announce("connected");
    let end = loop {
        match mux.accept_stream().await {
            Ok(mut stream) => {
                // Reverse streams need a registered reverse remote.
                tokio::spawn(async move {
                    let _ = header::write_status(&mut stream, Status::Denied, None).await;
                });
            }
            Err(e) => break e,
        }
    };
    publish.send_replace(None);
    Err(anyhow!("tunnel to {} lost: {end}", args.url))
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

/// Accepts local connections and forwards each to `target`.
async fn accept_loop(listener: TcpListener, target: HostPort, tunnel: Tunnel) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(forward_one(tcp, peer, target.clone(), tunnel.clone()));
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
    let stream = match open_stream(&mut tunnel, Kind::Connect, &target).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::info!(%peer, %target, error = %e, "connection refused");
            forward::refuse(tcp);
            return;
        }
    };
    tracing::debug!(%peer, %target, "forwarding");
    match forward::splice(tcp, stream).await {
        Ok((sent, received)) => tracing::debug!(%peer, %target, sent, received, "forward done"),
        Err(e) => tracing::debug!(%peer, %target, error = %e, "forward reset"),
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

/// Opens a stream to `target` and waits for the server's `Ok`.
async fn open_stream(
    tunnel: &mut Tunnel,
    kind: Kind,
    target: &HostPort,
) -> Result<Stream, OpenError> {
    let mux = tunnel.get().await?;
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
    let stream = open_stream(&mut tunnel, Kind::Connect, &target)
        .await
        .with_context(|| format!("stdio => {target}"))?;
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    forward::splice(stdio, stream)
        .await
        .with_context(|| format!("stdio => {target}"))?;
    Ok(())
}
