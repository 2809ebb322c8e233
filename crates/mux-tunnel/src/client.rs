//! `mux-tunnel client`: binds the local listeners, opens the tunnel, and
//! turns every accepted local connection into one stream.
//!
//! The current tunnel lives in a [`Current`] (a watch channel) that the
//! listeners' tasks read when a connection arrives; [`supervise`] opens the
//! tunnel, serves the streams the server opens, notices when the tunnel
//! ends and opens it again, re-registering the reverse remotes. A stream starts with the header of [`crate::header`]: the client
//! names the target, the server answers, and only after an `Ok` are bytes
//! copied ([`forward::splice`]); otherwise the local connection is reset.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::{anyhow, Context as _};
use mux_yamux_lite::Connection;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    cli::ClientArgs,
    forward,
    header::{self, Kind, OpenError, HEADER_TIMEOUT},
    remote::{HostPort, Remote},
    reverse, socks,
    tunnel::{self, Backoff, Current, Failure, Retry},
};

/// Runs the client: until stdio ends (`Ok`), or until the tunnel cannot
/// be opened again (an error).
pub(crate) async fn run(args: ClientArgs) -> anyhow::Result<()> {
    let connector = tunnel::Dialer::new(&args)?;
    let (publish, current) = watch::channel(None);
    let current = Current(current);
    let mut stdio = None;
    let mut reverse = Vec::new();
    for remote in &args.remotes {
        match remote {
            Remote::Forward { listen, target } => {
                let listener = bind(listen, remote).await?;
                announce(&format!("forward {} => {target}", listener.local_addr()?));
                tokio::spawn(accept_loop(listener, Some(target.clone()), current.clone()));
            }
            Remote::Socks { listen } => {
                let listener = bind(listen, remote).await?;
                announce(&format!("socks {}", listener.local_addr()?));
                tokio::spawn(accept_loop(listener, None, current.clone()));
            }
            Remote::Reverse { listen, target } => reverse.push((listen.clone(), target.clone())),
            Remote::Stdio { target } => {
                if stdio.replace(target.clone()).is_some() {
                    return Err(anyhow!("only one stdio remote may be given"));
                }
            }
        }
    }
    if let Some(target) = stdio {
        // One connection: no reconnection.
        let mux = tunnel::open(&connector, &args).await?;
        let routes = Arc::new(reverse::register(&mux, &reverse, false).await?);
        publish.send_replace(Some(mux.clone()));
        tokio::spawn(reverse::serve_streams(mux, routes));
        return run_stdio(current, target).await;
    }
    supervise(&connector, &args, &reverse, &publish).await
}

/// Opens the tunnel, registers the reverse remotes, publishes the tunnel
/// and serves it until it ends; then tries again after a backoff, until a
/// failure that no retry can mend or `--max-retry-count` failed attempts
/// in a row.
async fn supervise(
    connector: &tunnel::Dialer,
    args: &ClientArgs,
    reverse: &[(HostPort, HostPort)],
    publish: &watch::Sender<Option<Connection>>,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(args.max_retry_interval);
    let mut ever_connected = false;
    let mut failures: u64 = 0;
    loop {
        let failure = match tunnel::open(connector, args).await {
            Ok(mux) => match reverse::register(&mux, reverse, true).await {
                Ok(routes) => {
                    publish.send_replace(Some(mux.clone()));
                    tracing::info!(url = %args.url, "tunnel up");
                    announce("connected");
                    ever_connected = true;
                    failures = 0;
                    backoff.reset();
                    let end = reverse::serve_streams(mux, Arc::new(routes)).await;
                    publish.send_replace(None);
                    tracing::warn!(url = %args.url, reason = %end, "tunnel lost; reconnecting");
                    continue;
                }
                Err(e) => {
                    let _ = mux.close().await;
                    Failure {
                        message: format!("{e:#}"),
                        retry: Retry::Never,
                    }
                }
            },
            Err(failure) => failure,
        };
        let retry = match failure.retry {
            Retry::Never => false,
            Retry::IfEverConnected => ever_connected,
            Retry::Always => true,
        };
        failures = failures.saturating_add(1);
        if !retry || args.max_retry_count.is_some_and(|max| failures > max) {
            return Err(anyhow::Error::new(failure));
        }
        let wait = backoff.next_wait();
        tracing::warn!(error = %failure, retry_in = ?wait, "cannot open the tunnel");
        tokio::time::sleep(wait).await;
    }
}

/// A stdout line the tests and scripts wait for. Not used with a stdio
/// remote, whose stdout is the connection.
#[allow(clippy::print_stdout, reason = "the documented client status lines")]
pub(crate) fn announce(line: &str) {
    println!("{line}");
}

/// Binds a local listener, with an error naming the REMOTE.
async fn bind(listen: &HostPort, remote: &Remote) -> anyhow::Result<TcpListener> {
    TcpListener::bind((listen.host.as_str(), listen.port))
        .await
        .with_context(|| format!("{remote}: cannot listen on {listen}"))
}

/// Accepts local connections and forwards each to `target`, or to the
/// target its SOCKS5 request names when `target` is `None`.
async fn accept_loop(listener: TcpListener, target: Option<HostPort>, tunnel: Current) {
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
async fn forward_one(tcp: TcpStream, peer: SocketAddr, target: HostPort, mut tunnel: Current) {
    let opened = match tunnel.get().await {
        Ok(mux) => header::open(&mux, Kind::Connect, &target).await,
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
async fn socks_one(mut tcp: TcpStream, peer: SocketAddr, mut tunnel: Current) {
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
        Ok(mux) => header::open(&mux, Kind::Socks, &target).await,
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

/// stdin and stdout as one connection to `target`; returns when both
/// directions end.
async fn run_stdio(mut tunnel: Current, target: HostPort) -> anyhow::Result<()> {
    let mux = tunnel.get().await?;
    let stream = header::open(&mux, Kind::Connect, &target)
        .await
        .with_context(|| format!("stdio => {target}"))?;
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    forward::splice(stdio, stream)
        .await
        .with_context(|| format!("stdio => {target}"))?;
    Ok(())
}
