//! Real rust-libp2p swarms for the interop tests: TCP on 127.0.0.1, noise,
//! then either this crate's muxer or stock `libp2p-yamux`, running ping and
//! a request-response protocol that moves raw bytes.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Ready;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{noise, ping, request_response, tcp, Multiaddr, PeerId, StreamProtocol, Swarm};
use mux_libp2p::{Muxer, Protocol};

/// Which muxer a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// `mux_libp2p::Config::default()`.
    Ours,
    /// `libp2p::yamux::Config::default()`.
    Stock,
}

/// Largest message the byte codec reads.
pub const MAX_MESSAGE: u64 = 4 << 20;

/// Requests and responses are raw bytes: written whole, then the writer
/// closes its side, and the reader reads to the end (at most
/// [`MAX_MESSAGE`]).
#[derive(Debug, Clone, Default)]
pub struct Bytes;

async fn read_all<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io.take(MAX_MESSAGE).read_to_end(&mut out).await?;
    Ok(out)
}

async fn write_all<T: AsyncWrite + Unpin + Send>(io: &mut T, data: Vec<u8>) -> io::Result<()> {
    io.write_all(&data).await?;
    io.close().await
}

impl request_response::Codec for Bytes {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_all(io).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        read_all(io).await
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        write_all(io, req).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        write_all(io, res).await
    }
}

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub ping: ping::Behaviour,
    pub rr: request_response::Behaviour<Bytes>,
}

/// The protocols multistream-select picked for this node's connections.
pub type Negotiated = Arc<Mutex<Vec<Protocol>>>;

/// This crate's upgrade, recording which protocol each connection got.
#[derive(Clone)]
pub struct Recording {
    inner: mux_libp2p::Config,
    seen: Negotiated,
}

impl UpgradeInfo for Recording {
    type Info = Protocol;
    type InfoIter = <mux_libp2p::Config as UpgradeInfo>::InfoIter;
    fn protocol_info(&self) -> Self::InfoIter {
        self.inner.protocol_info()
    }
}

impl<C> InboundConnectionUpgrade<C> for Recording
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer;
    type Error = io::Error;
    type Future = Ready<io::Result<Muxer>>;
    fn upgrade_inbound(self, io: C, p: Protocol) -> Self::Future {
        self.seen.lock().unwrap().push(p);
        self.inner.upgrade_inbound(io, p)
    }
}

impl<C> OutboundConnectionUpgrade<C> for Recording
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer;
    type Error = io::Error;
    type Future = Ready<io::Result<Muxer>>;
    fn upgrade_outbound(self, io: C, p: Protocol) -> Self::Future {
        self.seen.lock().unwrap().push(p);
        self.inner.upgrade_outbound(io, p)
    }
}

fn behaviour() -> Behaviour {
    Behaviour {
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(200))),
        rr: request_response::Behaviour::with_codec(
            Bytes,
            [(
                StreamProtocol::new("/mux-test/bytes/1"),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(Duration::from_secs(60)),
        ),
    }
}

/// A swarm muxing with `muxer` (stock `libp2p-yamux` when `None`), and
/// what its muxer negotiated (always empty for stock nodes).
pub fn swarm(muxer: Option<mux_libp2p::Config>) -> (Swarm<Behaviour>, Negotiated) {
    let seen = Negotiated::default();
    let builder = libp2p::SwarmBuilder::with_new_identity().with_tokio();
    let tcp = tcp::Config::default().nodelay(true);
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
    let swarm = match muxer {
        Some(inner) => {
            let seen = seen.clone();
            builder
                .with_tcp(tcp, noise::Config::new, move || Recording {
                    inner: inner.clone(),
                    seen: seen.clone(),
                })
                .unwrap()
                .with_behaviour(|_| behaviour())
                .unwrap()
                .with_swarm_config(idle)
                .build()
        }
        None => builder
            .with_tcp(tcp, noise::Config::new, libp2p::yamux::Config::default)
            .unwrap()
            .with_behaviour(|_| behaviour())
            .unwrap()
            .with_swarm_config(idle)
            .build(),
    };
    (swarm, seen)
}

impl Node {
    fn muxer(self) -> Option<mux_libp2p::Config> {
        match self {
            Node::Ours => Some(mux_libp2p::Config::default()),
            Node::Stock => None,
        }
    }
}

/// Starts `swarm` listening on 127.0.0.1 and returns its address.
pub async fn listen(swarm: &mut Swarm<Behaviour>) -> Multiaddr {
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return address;
        }
    }
}

/// A listening swarm and a swarm dialing it.
pub async fn connected(dialer: Node, listener: Node) -> Pair {
    connected_with(dialer.muxer(), listener.muxer()).await
}

/// A listening swarm and a swarm dialing it, each muxing with its config
/// (stock `libp2p-yamux` for `None`).
pub async fn connected_with(
    dialer: Option<mux_libp2p::Config>,
    listener: Option<mux_libp2p::Config>,
) -> Pair {
    let (mut l, l_seen) = swarm(listener);
    let (mut d, d_seen) = swarm(dialer);
    let addr = listen(&mut l).await;
    d.dial(addr).unwrap();
    // Until both sides hold the connection: a request sent before then
    // would make the listener dial the dialer, which is not listening.
    let (mut d_up, mut l_up) = (false, false);
    while !(d_up && l_up) {
        tokio::select! {
            e = d.select_next_some() => d_up |= established(e),
            e = l.select_next_some() => l_up |= established(e),
        }
    }
    Pair {
        dialer: d,
        listener: l,
        dialer_seen: d_seen,
        listener_seen: l_seen,
    }
}

fn established(event: SwarmEvent<BehaviourEvent>) -> bool {
    match event {
        SwarmEvent::ConnectionEstablished { .. } => true,
        SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial failed: {error}"),
        SwarmEvent::IncomingConnectionError { error, .. } => panic!("incoming failed: {error}"),
        _ => false,
    }
}

/// Two connected swarms.
pub struct Pair {
    pub dialer: Swarm<Behaviour>,
    pub listener: Swarm<Behaviour>,
    pub dialer_seen: Negotiated,
    pub listener_seen: Negotiated,
}

impl Pair {
    pub fn peers(&self) -> (PeerId, PeerId) {
        (*self.dialer.local_peer_id(), *self.listener.local_peer_id())
    }
}
