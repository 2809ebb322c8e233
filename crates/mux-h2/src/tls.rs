//! TLS with rustls (feature `tls`): the client half used by
//! [`Connector`](crate::Connector) for `https` URLs, and [`serve_tls`].
//!
//! ALPN picks the protocol: `h2` for CONNECT and POST tunnels, `http/1.1`
//! for [`Mode::Http1Upgrade`](crate::Mode::Http1Upgrade). Both sides use the
//! `ring` provider explicitly, so no process-wide default provider is needed.

use std::{future::Future, io, sync::Arc, time::Duration};

use rustls::{pki_types::ServerName, ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{client::TlsStream, TlsAcceptor, TlsConnector};

use crate::{
    error::ConnectError,
    io::H2Conn,
    server::{accept_tcp, serve_connection, server_builder},
};

/// How long [`serve_tls`] waits for a client to finish its TLS handshake,
/// so silent clients cannot pin tasks forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting the Mozilla roots of `webpki-roots`.
fn default_client_config() -> Result<ClientConfig, ConnectError> {
    let roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Tls(io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Runs the TLS handshake over `tcp` for `host`, offering only `alpn`.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    config: Option<Arc<ClientConfig>>,
    alpn: &[u8],
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let mut config = match config {
        Some(config) => (*config).clone(),
        None => default_client_config()?,
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| ConnectError::InvalidUrl(format!("{host}: {e}")))?;
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(ConnectError::Tls)?;
    // A server that ignored ALPN gets the benefit of the doubt (prior
    // knowledge); one that chose another protocol would not understand us.
    if let Some(chosen) = tls.get_ref().1.alpn_protocol() {
        if chosen != alpn {
            return Err(ConnectError::Tls(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "server chose ALPN {:?}, expected {:?}",
                    String::from_utf8_lossy(chosen),
                    String::from_utf8_lossy(alpn)
                ),
            )));
        }
    }
    Ok(tls)
}

/// [`serve`](crate::serve) over TLS: the same HTTP/1.1 + HTTP/2 tunnel
/// server, with ALPN `h2` and `http/1.1` set on a copy of `config`.
///
/// A client that does not finish its handshake within
/// [`HANDSHAKE_TIMEOUT`] is dropped.
///
/// # Errors
/// As [`serve`](crate::serve): only when accepting TCP connections fails
/// for good.
pub async fn serve_tls<F, Fut>(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handler: F,
) -> io::Result<()>
where
    F: Fn(H2Conn) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let builder = server_builder();
    loop {
        let Some((tcp, addrs)) = accept_tcp(&listener).await? else {
            continue;
        };
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, remote = ?addrs.remote, "mux-h2: TLS handshake failed");
                    return;
                }
                Err(_elapsed) => {
                    tracing::debug!(remote = ?addrs.remote, "mux-h2: TLS handshake timed out");
                    return;
                }
            };
            serve_connection(builder, tls, addrs, handler).await;
        });
    }
}

/// A server configuration for `cert_chain` and `key` using the `ring`
/// provider, ready for [`serve_tls`].
///
/// # Errors
/// When rustls rejects the certificate or the key.
pub fn server_config(
    cert_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    Ok(Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(cert_chain, key)?,
    ))
}

/// A client configuration trusting exactly `roots` (for example a private
/// CA or a self-signed server), for [`Connector::tls_config`](crate::Connector::tls_config).
///
/// # Errors
/// When rustls rejects a root certificate.
pub fn client_config(
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(store)
            .with_no_client_auth(),
    ))
}
