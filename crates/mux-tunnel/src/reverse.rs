//! `R:` remotes, both sides: the client registers each with a
//! [`Kind::Listen`] stream that stays open as long as the server should
//! listen; the server listens (with `--reverse`), and for each connection
//! it accepts opens a [`Kind::Reverse`] stream naming the address it bound;
//! the client connects it to the local target it registered for that
//! address, and to nothing else.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use anyhow::{anyhow, Context as _};
use mux_yamux_lite::{Connection, Stream};
use tokio::{
    io::AsyncReadExt as _,
    net::{TcpListener, TcpStream},
};

use crate::{
    forward,
    header::{self, Kind, OpenError, Status, HEADER_TIMEOUT},
    remote::HostPort,
};

/// The client's reverse remotes on the current tunnel: the address the
/// server bound → the local target.
pub(crate) type Routes = Arc<HashMap<HostPort, HostPort>>;

/// Registers each reverse remote on the server: one [`Kind::Listen`]
/// stream each, kept open as long as the listener should live. Returns the
/// map from the address the server bound to the local target.
pub(crate) async fn register(
    mux: &Connection,
    reverse: &[(HostPort, HostPort)],
    print: bool,
) -> anyhow::Result<HashMap<HostPort, HostPort>> {
    let mut routes = HashMap::new();
    for (listen, target) in reverse {
        let remote = format!("R:{listen}");
        let mut control = match header::open(mux, Kind::Listen, listen).await {
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
            crate::client::announce(&format!("reverse {bound} => {target}"));
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
pub(crate) async fn serve_streams(mux: Connection, routes: Routes) -> mux_core::ConnError {
    loop {
        match mux.accept_stream().await {
            Ok(stream) => {
                tokio::spawn(serve(stream, routes.clone()));
            }
            Err(e) => return e,
        }
    }
}

/// One reverse connection: connects to the local target registered for the
/// server's listener, or refuses a listener this client did not register.
async fn serve(mut stream: Stream, routes: Routes) {
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

/// A reverse remote: listens on `addr` while `control` stays open, and
/// opens a [`Kind::Reverse`] stream to the client for each connection.
pub(crate) async fn listen(mut control: Stream, addr: HostPort, mux: Connection, peer: SocketAddr) {
    let listener = match TcpListener::bind((addr.host.as_str(), addr.port)).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::warn!(%peer, %addr, error = %e, "cannot listen for a reverse remote");
            let _ = header::write_status(&mut control, Status::Refused, None).await;
            return;
        }
    };
    let bound = match listener.local_addr() {
        Ok(bound) => HostPort::new(bound.ip().to_string(), bound.port()),
        Err(_) => addr,
    };
    if header::write_status(&mut control, Status::Ok, Some(&bound))
        .await
        .is_err()
    {
        return;
    }
    tracing::info!(%peer, %bound, "reverse listener open");
    let mut sink = [0u8; 64];
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, from)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(reverse_one(tcp, from, bound.clone(), mux.clone()));
                }
                Err(e) => tracing::debug!(%bound, error = %e, "reverse accept failed"),
            },
            // The client sends nothing more; its end (or the tunnel's)
            // closes the listener.
            read = control.read(&mut sink) => if matches!(read, Ok(0) | Err(_)) {
                break;
            },
        }
    }
    tracing::info!(%peer, %bound, "reverse listener closed");
}

/// Carries one connection of a reverse listener to the client.
async fn reverse_one(tcp: TcpStream, from: SocketAddr, bound: HostPort, mux: Connection) {
    match header::open(&mux, Kind::Reverse, &bound).await {
        Ok(stream) => forward::splice_logged(tcp, stream, &from, &bound).await,
        Err(e) => {
            tracing::info!(%from, %bound, error = %e, "cannot reach the client");
            forward::refuse(tcp);
        }
    }
}
