//! `--proxy http://[USER:PASS@]HOST:PORT`: reaching the server through an
//! HTTP proxy's CONNECT method (RFC 9110 §9.3.6).
//!
//! The client sends `CONNECT HOST:PORT HTTP/1.1` for the server's host and
//! port (with `Proxy-Authorization: Basic` when the proxy URL carries
//! credentials); a 2xx answer turns the proxy connection into a byte pipe
//! to the server, over which TLS (for an `https` URL) and the tunnel's
//! HTTP exchange run as over a direct connection, in every mode. hyper's
//! HTTP/1.1 client does the exchange, so bytes the proxy relays right
//! after its answer are kept.

use std::fmt;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::auth::Credentials;

/// A parsed `--proxy`.
#[derive(Clone)]
pub(crate) struct Proxy {
    host: String,
    port: u16,
    /// `Proxy-Authorization`, from the URL's credentials.
    authorization: Option<HeaderValue>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials.
        write!(f, "Proxy({self})")
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}/", authority(&self.host, self.port))
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why the proxy did not connect us.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    /// The proxy cannot be reached, or the exchange with it broke.
    #[error("proxy {proxy}: {message}")]
    Io {
        /// The proxy.
        proxy: String,
        /// What failed.
        message: String,
    },
    /// The proxy answered CONNECT with something other than 2xx.
    #[error("proxy {proxy} refused CONNECT {target} with HTTP {status}{hint}")]
    Refused {
        /// The proxy.
        proxy: String,
        /// The server's `HOST:PORT`.
        target: String,
        /// Its answer.
        status: StatusCode,
        /// A word on 407.
        hint: &'static str,
    },
}

impl Proxy {
    /// Parses `http://[USER:PASS@]HOST:PORT[/]`.
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{input:?}: {why} (expected http://[USER:PASS@]HOST:PORT)");
        let uri: http::Uri = input.parse().map_err(|_| bad("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("the proxy URL must start with http://"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("a proxy URL has no path"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().ok_or_else(|| bad("no port"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let authorization = match authority.as_str().rsplit_once('@') {
            Some((userinfo, _)) => {
                let credentials = Credentials::parse(userinfo).map_err(|e| bad(&e))?;
                Some(
                    credentials
                        .header_value()
                        .map_err(|e| bad(&e.to_string()))?,
                )
            }
            None => None,
        };
        Ok(Self {
            host,
            port,
            authorization,
        })
    }

    /// Asks the proxy for a connection to `host:port` and returns it.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Result<TokioIo<Upgraded>, ProxyError> {
        let io_error = |message: String| ProxyError::Io {
            proxy: self.to_string(),
            message,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| io_error(format!("cannot connect: {e}")))?;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
                .await
                .map_err(|e| io_error(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "proxy connection ended with error");
            }
        });
        let target = authority(host, port);
        let mut request = Request::builder()
            .method(Method::CONNECT)
            .uri(target.as_str())
            .header(header::HOST, target.as_str());
        if let Some(value) = &self.authorization {
            request = request.header(header::PROXY_AUTHORIZATION, value.clone());
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| io_error(format!("CONNECT {target}: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| io_error(format!("CONNECT {target}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ProxyError::Refused {
                proxy: self.to_string(),
                target,
                status,
                hint: if status == StatusCode::PROXY_AUTHENTICATION_REQUIRED {
                    "; give credentials as --proxy http://USER:PASS@HOST:PORT"
                } else {
                    ""
                },
            });
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| io_error(format!("CONNECT {target}: {e}")))?;
        tracing::debug!(proxy = %self, %target, "proxy connected");
        Ok(TokioIo::new(upgraded))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn proxy_urls() {
        let proxy = Proxy::parse("http://127.0.0.1:3128").unwrap();
        assert_eq!(proxy.to_string(), "http://127.0.0.1:3128/");
        assert!(proxy.authorization.is_none());
        let proxy = Proxy::parse("http://u:p@[::1]:3128/").unwrap();
        assert_eq!(proxy.host, "::1");
        assert_eq!(proxy.to_string(), "http://[::1]:3128/");
        assert_eq!(proxy.authorization.unwrap(), "Basic dTpw");
        assert!(!format!("{:?}", Proxy::parse("http://u:p@h:1").unwrap()).contains("dTpw"));
        for bad in [
            "127.0.0.1:3128",
            "https://h:3128",
            "socks5://h:1080",
            "http://h",
            "http://h:1/path",
            "http://nopass@h:1",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }
}
