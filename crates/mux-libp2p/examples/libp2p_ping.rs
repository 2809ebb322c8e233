//! Two rust-libp2p nodes on 127.0.0.1, one muxing with `mux-libp2p` and one
//! with stock `libp2p-yamux`, ping each other; the example prints the
//! negotiated round-trip times and exits.
//!
//! ```text
//! cargo run --example libp2p_ping -p mux-libp2p
//! ```
//!
//! Both run TCP and noise; multistream-select settles on `/yamux/1.0.0`,
//! the one muxer both offer. Exits non-zero if a ping fails or none
//! arrives within 30 s.

// A command-line demo: it reports on stdout.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::{dummy, NetworkBehaviour, SwarmEvent};
use libp2p::{noise, ping, tcp, Swarm, SwarmBuilder};

#[derive(NetworkBehaviour)]
struct Behaviour {
    ping: ping::Behaviour,
    keep: dummy::Behaviour,
}

fn behaviour() -> Behaviour {
    Behaviour {
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(500))),
        keep: dummy::Behaviour,
    }
}

/// The node using this crate: the one line that differs from a stock node
/// is the muxer argument of `with_tcp`.
fn ours() -> Result<Swarm<Behaviour>, Box<dyn Error>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            mux_libp2p::Config::default,
        )?
        .with_behaviour(|_| behaviour())?
        .build())
}

fn stock() -> Result<Swarm<Behaviour>, Box<dyn Error>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|_| behaviour())?
        .build())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut listener = stock()?;
    let mut dialer = ours()?;
    listener.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = listener.select_next_some().await {
            break address;
        }
    };
    println!(
        "stock libp2p-yamux node {} on {addr}",
        listener.local_peer_id()
    );
    println!("mux-libp2p node {} dials it", dialer.local_peer_id());
    dialer.dial(addr)?;

    let mut pings = 0u32;
    let run = async {
        while pings < 3 {
            tokio::select! {
                e = dialer.select_next_some() => {
                    if let SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { result, .. })) = e {
                        let rtt = result?;
                        pings = pings.saturating_add(1);
                        println!("ping from ours to stock: rtt {rtt:?}");
                    }
                }
                e = listener.select_next_some() => {
                    if let SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { result, .. })) = e {
                        println!("ping from stock to ours: rtt {:?}", result?);
                    }
                }
            }
        }
        Ok::<_, Box<dyn Error>>(())
    };
    tokio::time::timeout(Duration::from_secs(30), run).await??;
    Ok(())
}
