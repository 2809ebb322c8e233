//! Interop with stock rust-libp2p: two swarms over TCP on 127.0.0.1 with
//! noise, one muxing with this crate and one with `libp2p-yamux`, dialing
//! each way; and two of ours, which pick the lite wire.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use libp2p::ping;
use libp2p::request_response::{Event as RrEvent, Message};
use libp2p::swarm::SwarmEvent;
use mux_libp2p::Protocol;
use support::{connected, BehaviourEvent, Node, Pair};

/// Bound on each case, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

const MIXED: [(Node, Node); 2] = [(Node::Ours, Node::Stock), (Node::Stock, Node::Ours)];

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as u8)
        .collect()
}

/// Drives both swarms until each has seen a successful ping from the
/// other; returns the dialer's round-trip time.
async fn ping_both(pair: &mut Pair) -> Duration {
    let (d_id, l_id) = pair.peers();
    let (mut d_rtt, mut l_ok) = (None, false);
    while d_rtt.is_none() || !l_ok {
        tokio::select! {
            e = pair.dialer.select_next_some() => {
                if let SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) = e {
                    assert_eq!(peer, l_id);
                    d_rtt = Some(result.expect("the dialer's ping failed"));
                }
            }
            e = pair.listener.select_next_some() => {
                if let SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) = e {
                    assert_eq!(peer, d_id);
                    result.expect("the listener's ping failed");
                    l_ok = true;
                }
            }
        }
    }
    d_rtt.unwrap_or_default()
}

/// Each side sends the other 1 MiB and answers each request with 1 MiB of
/// its own; every byte is checked.
async fn exchange_one_mib_each_way(pair: &mut Pair) {
    let (d_id, l_id) = pair.peers();
    pair.dialer
        .behaviour_mut()
        .rr
        .send_request(&l_id, pattern(1, MIB));
    pair.listener
        .behaviour_mut()
        .rr
        .send_request(&d_id, pattern(2, MIB));
    let mut answers = 0;
    while answers < 2 {
        tokio::select! {
            e = pair.dialer.select_next_some() => {
                answers += on_rr(&mut pair.dialer, e, 2, 3, 4);
            }
            e = pair.listener.select_next_some() => {
                answers += on_rr(&mut pair.listener, e, 1, 4, 3);
            }
        }
    }
}

/// Handles one swarm event of the byte exchange: checks a request against
/// `req_seed` and answers with `reply_seed`; checks a response against
/// `resp_seed`. Returns 1 for each response received.
fn on_rr(
    swarm: &mut libp2p::Swarm<support::Behaviour>,
    event: SwarmEvent<BehaviourEvent>,
    req_seed: u32,
    reply_seed: u32,
    resp_seed: u32,
) -> usize {
    match event {
        SwarmEvent::Behaviour(BehaviourEvent::Rr(RrEvent::Message { message, .. })) => {
            match message {
                Message::Request {
                    request, channel, ..
                } => {
                    let want = pattern(req_seed, MIB);
                    let first = request.iter().zip(&want).position(|(a, b)| a != b);
                    assert!(
                        request == want,
                        "the request differs: {} bytes, first difference at {first:?}",
                        request.len()
                    );
                    swarm
                        .behaviour_mut()
                        .rr
                        .send_response(channel, pattern(reply_seed, MIB))
                        .unwrap();
                    0
                }
                Message::Response { response, .. } => {
                    let want = pattern(resp_seed, MIB);
                    let first = response.iter().zip(&want).position(|(a, b)| a != b);
                    assert!(
                        response == want,
                        "{}: the response differs: {} bytes, first difference at {first:?}",
                        swarm.local_peer_id(),
                        response.len()
                    );
                    1
                }
            }
        }
        SwarmEvent::Behaviour(BehaviourEvent::Rr(
            e @ (RrEvent::OutboundFailure { .. } | RrEvent::InboundFailure { .. }),
        )) => panic!("request-response failed: {e:?}"),
        SwarmEvent::ConnectionClosed { cause, .. } => panic!("connection closed: {cause:?}"),
        _ => 0,
    }
}

fn assert_negotiated(pair: &Pair, dialer: Node, listener: Node, protocol: Protocol) {
    for (node, seen) in [(dialer, &pair.dialer_seen), (listener, &pair.listener_seen)] {
        if node == Node::Ours {
            assert_eq!(*seen.lock().unwrap(), vec![protocol], "{node:?}");
        }
    }
}

async fn bounded(case: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(LIMIT, case).await.expect("hung");
}

#[tokio::test]
async fn ping_between_ours_and_stock_yamux_both_ways() {
    bounded(async {
        for (dialer, listener) in MIXED {
            let mut pair = connected(dialer, listener).await;
            let rtt = ping_both(&mut pair).await;
            assert!(rtt < Duration::from_secs(5), "{rtt:?}");
            assert_negotiated(&pair, dialer, listener, Protocol::Yamux);
        }
    })
    .await;
}

#[tokio::test]
async fn a_mib_each_way_between_ours_and_stock_yamux_both_ways() {
    bounded(async {
        for (dialer, listener) in MIXED {
            let mut pair = connected(dialer, listener).await;
            exchange_one_mib_each_way(&mut pair).await;
            ping_both(&mut pair).await;
            assert_negotiated(&pair, dialer, listener, Protocol::Yamux);
        }
    })
    .await;
}

#[tokio::test]
async fn two_of_ours_negotiate_the_lite_wire() {
    bounded(async {
        let mut pair = connected(Node::Ours, Node::Ours).await;
        exchange_one_mib_each_way(&mut pair).await;
        ping_both(&mut pair).await;
        assert_negotiated(&pair, Node::Ours, Node::Ours, Protocol::Lite);
    })
    .await;
}

#[tokio::test]
async fn ours_without_lite_speaks_yamux_to_ours() {
    bounded(async {
        let mut pair = support::connected_with(
            Some(mux_libp2p::Config::default().with_lite(false)),
            Some(mux_libp2p::Config::default()),
        )
        .await;
        ping_both(&mut pair).await;
        assert_negotiated(&pair, Node::Ours, Node::Ours, Protocol::Yamux);
    })
    .await;
}
