//! The transports every contender runs over, and a dialer that makes
//! connections of one kind on demand.
//!
//! - [`Transport::Duplex`]: `tokio::io::duplex` with a 1 MiB buffer;
//! - [`Transport::Tcp`]: TCP on 127.0.0.1 with `TCP_NODELAY`;
//! - [`Transport::H2`]: one exchange of an HTTP/2 connection (h2c, CONNECT)
//!   served by `mux_h2::serve` on 127.0.0.1, as an `H2Conn` byte pipe.
//!
//! [`Io`] is the connection type of all three, so a contender is
//! instantiated once, whatever the transport. [`dialer`] returns a
//! [`Dialer`] and a [`Listener`]: each [`Dialer::dial`] makes one connection
//! and the listener's [`Listener::accept`] yields its other end. The raw
//! contender dials once per stream; the muxers dial once ([`pair`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::client::conn::http2::SendRequest;
use mux_h2::{H2Conn, TunnelBody};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Buffer size of each `tokio::io::duplex` pipe: 1 MiB.
pub const DUPLEX_BUFFER: usize = 1024 * 1024;

/// The kind of connection the contenders run over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `tokio::io::duplex(1 MiB)`: an in-memory pipe.
    Duplex,
    /// TCP on 127.0.0.1, `TCP_NODELAY` on both ends.
    Tcp,
    /// One HTTP/2 exchange (h2c CONNECT) through `mux-h2`, on 127.0.0.1.
    H2,
}

impl Transport {
    /// Every transport, in table order.
    pub const ALL: [Self; 3] = [Self::Duplex, Self::Tcp, Self::H2];

    /// The short name used in tables, filters and bench ids.
    pub fn name(self) -> &'static str {
        match self {
            Self::Duplex => "duplex",
            Self::Tcp => "tcp",
            Self::H2 => "h2-tunnel",
        }
    }
}

/// A connection of any [`Transport`].
#[derive(Debug)]
pub enum Io {
    /// One end of a duplex pipe.
    Duplex(DuplexStream),
    /// A TCP connection.
    Tcp(TcpStream),
    /// An HTTP/2 tunnel.
    H2(Pin<Box<H2Conn>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Duplex(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::H2(s) => s.as_mut().poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Duplex(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::H2(s) => s.as_mut().poll_write(cx, buf),
        }
    }

    // Forwarded so that every contender sees what the transport can do: a
    // wrapper without these makes a muxer's vectored writes one write per
    // slice (or a copy into one buffer).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Duplex(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::H2(s) => s.as_mut().poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Duplex(s) => s.is_write_vectored(),
            Self::Tcp(s) => s.is_write_vectored(),
            Self::H2(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Duplex(s) => Pin::new(s).poll_flush(cx),
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::H2(s) => s.as_mut().poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Duplex(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::H2(s) => s.as_mut().poll_shutdown(cx),
        }
    }
}

/// Makes connections of one [`Transport`]; cheap to clone.
#[derive(Clone)]
pub struct Dialer {
    inner: DialerKind,
}

#[derive(Clone)]
enum DialerKind {
    Duplex(mpsc::UnboundedSender<Io>),
    Tcp(SocketAddr),
    H2 {
        sender: SendRequest<TunnelBody>,
        url: Arc<str>,
    },
}

impl std::fmt::Debug for Dialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dialer")
    }
}

/// The accepting end of a [`Dialer`].
#[derive(Debug)]
pub struct Listener {
    inner: ListenerKind,
}

#[derive(Debug)]
enum ListenerKind {
    Channel(mpsc::UnboundedReceiver<Io>),
    Tcp(TcpListener),
}

/// Starts a dialer of `transport`: for TCP, a listener on 127.0.0.1:0; for
/// HTTP/2, a `mux_h2::serve` server there plus one client HTTP/2
/// connection that every dial opens a new exchange on. Must run inside a
/// tokio runtime.
pub async fn dialer(transport: Transport) -> io::Result<(Dialer, Listener)> {
    match transport {
        Transport::Duplex => {
            let (tx, rx) = mpsc::unbounded_channel();
            Ok((
                Dialer {
                    inner: DialerKind::Duplex(tx),
                },
                Listener {
                    inner: ListenerKind::Channel(rx),
                },
            ))
        }
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            Ok((
                Dialer {
                    inner: DialerKind::Tcp(addr),
                },
                Listener {
                    inner: ListenerKind::Tcp(listener),
                },
            ))
        }
        Transport::H2 => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (tx, rx) = mpsc::unbounded_channel();
            // Each accepted tunnel goes to the listener; the handler then
            // returns, which leaves the tunnel running.
            tokio::spawn(mux_h2::serve(listener, move |conn| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(Io::H2(Box::pin(conn)));
                }
            }));
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let sender = mux_h2::handshake(tcp).await.map_err(io::Error::other)?;
            Ok((
                Dialer {
                    inner: DialerKind::H2 {
                        sender,
                        url: format!("http://{addr}/bench").into(),
                    },
                },
                Listener {
                    inner: ListenerKind::Channel(rx),
                },
            ))
        }
    }
}

impl Dialer {
    /// Makes one connection; its other end comes out of the [`Listener`].
    pub async fn dial(&self) -> io::Result<Io> {
        match &self.inner {
            DialerKind::Duplex(tx) => {
                let (a, b) = tokio::io::duplex(DUPLEX_BUFFER);
                tx.send(Io::Duplex(b))
                    .map_err(|_| io::Error::other("duplex listener dropped"))?;
                Ok(Io::Duplex(a))
            }
            DialerKind::Tcp(addr) => {
                let tcp = TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                Ok(Io::Tcp(tcp))
            }
            DialerKind::H2 { sender, url } => {
                let (conn, _response) = mux_h2::Connector::new()
                    .connect_with(sender, &**url)
                    .await
                    .map_err(io::Error::other)?;
                Ok(Io::H2(Box::pin(conn)))
            }
        }
    }
}

impl Listener {
    /// The other end of the next dialled connection.
    pub async fn accept(&mut self) -> io::Result<Io> {
        match &mut self.inner {
            ListenerKind::Channel(rx) => rx
                .recv()
                .await
                .ok_or_else(|| io::Error::other("dialer dropped")),
            ListenerKind::Tcp(listener) => {
                let (tcp, _) = listener.accept().await?;
                tcp.set_nodelay(true)?;
                Ok(Io::Tcp(tcp))
            }
        }
    }
}

/// One connection of `transport`: (client end, server end).
pub async fn pair(transport: Transport) -> io::Result<(Io, Io)> {
    let (dialer, mut listener) = dialer(transport).await?;
    let (client, server) = tokio::join!(dialer.dial(), listener.accept());
    Ok((client?, server?))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A contender's vectored writes must reach the transport as such; the
    // wrapper once hid them, which cost every muxer a copy per byte.
    #[tokio::test]
    async fn the_wrapper_shows_what_the_transport_can_do() {
        for transport in [Transport::Duplex, Transport::Tcp] {
            let (a, _b) = pair(transport).await.unwrap();
            let inner = match &a {
                Io::Duplex(s) => s.is_write_vectored(),
                Io::Tcp(s) => s.is_write_vectored(),
                Io::H2(s) => s.is_write_vectored(),
            };
            assert!(inner, "{transport:?} writes vectored");
            assert_eq!(a.is_write_vectored(), inner, "{transport:?}");
        }
    }
}
