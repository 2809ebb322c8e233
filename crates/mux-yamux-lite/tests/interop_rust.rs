//! Interoperability on the yamux wire with the Rust incumbents: the `yamux`
//! crate 0.13 and 0.14 and tokio-yamux 0.3, each in both roles, over TCP on
//! 127.0.0.1. Every test runs against every peer in both roles; a failure
//! names the peer and the role.
// Helpers outside #[test] functions unwrap too: a failure is the test's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects
)]

mod interop;

use std::future::Future;
use std::io;
use std::time::Duration;

use interop::{echo, pattern, round_trip, yamux_config, Peer, PeerConn, PeerStream};
use mux_core::{ShutdownOutcome, StreamError};
use mux_yamux_lite::{Config, Connection, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bound on each test case, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(60);

/// Our connection and a peer's, over TCP; ours is the client when
/// `ours_dials`.
async fn connect(peer: Peer, ours_dials: bool, config: Config) -> (Connection, PeerConn) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (dialed, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (dialed, (accepted, _)) = (dialed.unwrap(), accepted.unwrap());
    for s in [&dialed, &accepted] {
        s.set_nodelay(true).unwrap();
    }
    if ours_dials {
        let ours = Connection::new(dialed, Role::Client, config);
        (ours, PeerConn::start(peer, accepted, true))
    } else {
        let ours = Connection::new(accepted, Role::Server, config);
        (ours, PeerConn::start(peer, dialed, false))
    }
}

/// Runs `case` against every peer in both roles.
async fn each_peer<F, Fut>(case: F)
where
    F: Fn(Peer, bool) -> Fut,
    Fut: Future<Output = ()>,
{
    for peer in Peer::ALL {
        for ours_dials in [true, false] {
            let what = format!("{peer:?}, ours_dials: {ours_dials}");
            if tokio::time::timeout(LIMIT, case(peer, ours_dials))
                .await
                .is_err()
            {
                panic!("{what}: hung for {LIMIT:?}");
            }
        }
    }
}

const STREAMS: u32 = 64;
const LEN: usize = 1 << 20;

/// The bytes each stream echoes against `peer`: 1 MiB, except against
/// tokio-yamux, whose streams lose the wakeup of a write waiting for
/// credit (frames reach a stream through a channel that wakes only a task
/// polling its read side) and, after a half-close, stop handling window
/// updates: it cannot carry 64 concurrent 1 MiB echoes even against
/// itself (it hangs within seconds). Against it each echo fits in the
/// initial window, so no write of its ever waits for credit.
fn echo_len(peer: Peer) -> usize {
    match peer {
        Peer::TokioYamux => 128 * 1024,
        _ => LEN,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_streams_of_one_mib_echo_whoever_opens_them() {
    each_peer(|peer, ours_dials| async move {
        let (ours, mut theirs) = connect(peer, ours_dials, yamux_config()).await;
        let len = echo_len(peer);
        // We open, the peer echoes.
        let echoes = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..STREAMS {
                let s = theirs.accept().await?;
                tasks.spawn(echo(s));
            }
            while let Some(r) = tasks.join_next().await {
                assert_eq!(r.unwrap()?, len as u64);
            }
            Ok::<_, io::Error>(theirs)
        });
        let mut tasks = tokio::task::JoinSet::new();
        for seed in 0..STREAMS {
            let s = ours.open_stream().await.unwrap();
            tasks.spawn(async move {
                let data = pattern(seed, len);
                let back = round_trip(s, &data).await?;
                assert!(back == data, "stream {seed}: the echo differs");
                Ok::<_, io::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap_or_else(|e| panic!("{peer:?}: {e}"));
        }
        let theirs = echoes.await.unwrap().unwrap();

        // The peer opens, we echo.
        let server = ours.clone();
        let our_echoes = tokio::spawn(async move {
            for _ in 0..STREAMS {
                let s = server.accept_stream().await.unwrap();
                tokio::spawn(echo(s));
            }
        });
        let mut tasks = tokio::task::JoinSet::new();
        for seed in 0..STREAMS {
            let s = theirs.open().await.unwrap();
            tasks.spawn(async move {
                let data = pattern(seed + 1000, len);
                let back = round_trip(s, &data).await?;
                assert!(back == data, "stream {seed}: the echo differs");
                Ok::<_, io::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap_or_else(|e| panic!("{peer:?}: {e}"));
        }
        our_echoes.await.unwrap();
        assert_eq!(ours.stats().peer_error_resets, 0);
        assert!(!ours.is_closed());
    })
    .await;
}

#[tokio::test]
async fn half_close_works_both_ways() {
    each_peer(|peer, ours_dials| async move {
        let (ours, mut theirs) = connect(peer, ours_dials, yamux_config()).await;
        // Ours opens and half-closes first; the peer answers after EOF.
        let mut s = ours.open_stream().await.unwrap();
        s.write_all(b"question").await.unwrap();
        s.shutdown().await.unwrap();
        let mut t = theirs.accept().await.unwrap();
        let mut got = Vec::new();
        t.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"question");
        t.write_all(b"answer").await.unwrap();
        t.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer", "{peer:?}");

        // The peer opens and half-closes first; ours answers after EOF.
        let mut t = theirs.open().await.unwrap();
        t.write_all(b"question").await.unwrap();
        t.shutdown().await.unwrap();
        let mut s = ours.accept_stream().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"question");
        s.write_all(b"answer").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        t.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"answer", "{peer:?}");
    })
    .await;
}

/// Reads until the stream ends: `Ok(true)` for EOF, `Err` for an error.
async fn read_to_end_or_error(s: &mut PeerStream) -> io::Result<bool> {
    let mut sink = Vec::new();
    s.read_to_end(&mut sink).await.map(|_| true)
}

#[tokio::test]
async fn a_reset_is_seen_by_the_other_side() {
    each_peer(|peer, ours_dials| async move {
        let (ours, mut theirs) = connect(peer, ours_dials, yamux_config()).await;
        // Ours resets: the peer's read ends. rust-yamux reports a reset as
        // EOF; the others as an error.
        let mut s = ours.open_stream().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut t = theirs.accept().await.unwrap();
        t.read_exact(&mut [0u8; 1]).await.unwrap();
        mux_core::MuxedStream::reset_with(&mut s, 7);
        let ended = read_to_end_or_error(&mut t).await;
        assert!(
            ended.is_err() || peer != Peer::TokioYamux,
            "{peer:?}: a reset read as EOF"
        );

        // The peer resets (rust-yamux: by dropping an unclosed stream).
        let mut t = theirs.open().await.unwrap();
        t.write_all(b"y").await.unwrap();
        let mut s = ours.accept_stream().await.unwrap();
        s.read_exact(&mut [0u8; 1]).await.unwrap();
        drop(t);
        let e = s.read(&mut [0u8; 8]).await;
        match e {
            Err(e) => {
                let reset =
                    StreamError::from_io(&e).is_some_and(|se| se.is_reset() && se.is_remote());
                assert!(reset, "{peer:?}: {e:?}");
            }
            // tokio-yamux closes a dropped stream with FIN, not RST.
            Ok(0) => assert_eq!(peer, Peer::TokioYamux, "a dropped stream read as EOF"),
            Ok(n) => panic!("{peer:?}: {n} unexpected bytes"),
        }
    })
    .await;
}

#[tokio::test]
async fn streams_opened_in_one_order_and_written_in_another_all_arrive() {
    each_peer(|peer, ours_dials| async move {
        let (ours, theirs) = connect(peer, ours_dials, yamux_config()).await;
        // rust-yamux sends a SYN with the stream's first frame, so the
        // second stream announces itself first.
        let mut first = theirs.open().await.unwrap();
        let mut second = theirs.open().await.unwrap();
        second.write_all(b"second").await.unwrap();
        second.shutdown().await.unwrap();
        first.write_all(b"first").await.unwrap();
        first.shutdown().await.unwrap();
        let mut got = Vec::new();
        for _ in 0..2 {
            let mut s = ours.accept_stream().await.unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).await.unwrap();
            got.push(text);
        }
        got.sort();
        assert_eq!(got, ["first", "second"], "{peer:?}");
        assert!(!ours.is_closed());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_unaccepted_opens_from_the_peer_keep_the_connection() {
    each_peer(|peer, ours_dials| async move {
        let (ours, theirs) = connect(peer, ours_dials, yamux_config()).await;
        let theirs = std::sync::Arc::new(theirs);
        // The peer opens 300 streams and writes on each before we accept
        // any: our backlog holds 256 and refuses the rest with RST, or
        // (rust-yamux) the peer holds back opens beyond 256 unanswered.
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..300u32 {
            let theirs = theirs.clone();
            writers.spawn(async move {
                let mut t = theirs.open().await?;
                t.write_all(&i.to_be_bytes()).await?;
                t.shutdown().await?;
                let mut back = Vec::new();
                t.read_to_end(&mut back).await?;
                Ok::<_, io::Error>(back == i.to_be_bytes())
            });
        }
        tokio::task::yield_now().await;
        let server = ours.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok(s) = server.accept_stream().await {
                tokio::spawn(echo(s));
            }
        });
        let (mut echoed, mut refused) = (0, 0);
        while let Some(r) = writers.join_next().await {
            match r.unwrap() {
                Ok(true) => echoed += 1,
                Ok(false) => panic!("{peer:?}: an echo differs"),
                Err(_) => refused += 1,
            }
        }
        assert_eq!(echoed + refused, 300);
        assert!(
            echoed >= 256,
            "{peer:?}: only {echoed} of 300 streams worked"
        );
        assert!(!ours.is_closed(), "{peer:?}: the connection ended");
        // Still usable afterwards.
        let s = ours.open_stream().await.unwrap();
        let mut t_side = tokio::spawn(async move {
            let mut theirs = std::sync::Arc::try_unwrap(theirs).ok().expect("sole owner");
            let t = theirs.accept().await.unwrap();
            echo(t).await.unwrap();
        });
        assert_eq!(round_trip(s, b"after").await.unwrap(), b"after");
        (&mut t_side).await.unwrap();
        acceptor.abort();
    })
    .await;
}

#[tokio::test]
async fn shutdown_with_a_live_stream_delivers_every_byte_then_ends() {
    each_peer(|peer, ours_dials| async move {
        let (ours, mut theirs) = connect(peer, ours_dials, yamux_config()).await;
        let s = ours.open_stream().await.unwrap();
        let len = echo_len(peer);
        let data = pattern(9, len);
        let transfer = {
            let data = data.clone();
            tokio::spawn(async move { round_trip(s, &data).await })
        };
        let t = theirs.accept().await.unwrap();
        let echo_task = tokio::spawn(echo(t));
        // The transfer is under way; a graceful shutdown lets it finish.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let outcome = ours.shutdown(deadline).await;
        let back = transfer.await.unwrap().unwrap();
        assert!(back == data, "{peer:?}: bytes lost in the shutdown");
        assert_eq!(echo_task.await.unwrap().unwrap(), len as u64);
        assert_eq!(outcome.unwrap(), ShutdownOutcome::Drained, "{peer:?}");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_survives_minutes_of_keepalive_both_ways() {
    for peer in Peer::ALL {
        for ours_dials in [true, false] {
            // In memory, so the paused clock can skip the idle minutes.
            let (a, b) = tokio::io::duplex(1 << 20);
            let (ours, mut theirs) = if ours_dials {
                let ours = Connection::new(a, Role::Client, yamux_config());
                (ours, PeerConn::start(peer, b, true))
            } else {
                let ours = Connection::new(a, Role::Server, yamux_config());
                (ours, PeerConn::start(peer, b, false))
            };
            // Our keepalive pings after 30 s of silence and gives up 30 s
            // after an unanswered one; five minutes of idling need every
            // ping answered.
            tokio::time::sleep(Duration::from_secs(300)).await;
            assert!(
                !ours.is_closed(),
                "{peer:?}: keepalive ended the connection"
            );
            assert!(ours.rtt().is_some(), "{peer:?}: no ping was answered");
            // And the connection still carries a stream.
            let s = ours.open_stream().await.unwrap();
            let (back, echoed) = tokio::join!(round_trip(s, b"still here"), async {
                echo(theirs.accept().await.unwrap()).await.unwrap()
            });
            assert_eq!(back.unwrap(), b"still here", "{peer:?}");
            assert_eq!(echoed, 10);
        }
    }
}
