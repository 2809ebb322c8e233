//! Load tests of mux-yamux-lite: many concurrent streams, many sequential
//! streams, echo over real TCP, and isolation of a stalled stream.
#![allow(clippy::arithmetic_side_effects)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mux_core::{MuxedStream, StreamError};
use mux_yamux_lite::{Config, Connection, Role, Stream};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Bound on every test, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("the test hung (60 s bound)"))
}

fn pair() -> (Connection, Connection) {
    let (a, b) = tokio::io::duplex(1 << 20);
    (
        Connection::new(a, Role::Client, Config::default()),
        Connection::new(b, Role::Server, Config::default()),
    )
}

/// Deterministic bytes that differ per `seed` and do not repeat with any
/// power-of-two period.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 + seed * 97) % 251) as u8)
        .collect()
}

/// Echoes one stream until EOF, then closes its write side.
async fn echo(stream: Stream) -> std::io::Result<u64> {
    let (mut r, mut w) = tokio::io::split(stream);
    let n = tokio::io::copy(&mut r, &mut w).await?;
    w.shutdown().await?;
    Ok(n)
}

/// Accepts and echoes every stream until the connection refuses more;
/// returns how many streams it echoed and the first error, if any.
async fn echo_server(conn: Connection) -> (usize, Option<String>) {
    let mut tasks = JoinSet::new();
    while let Ok(s) = conn.accept_stream().await {
        let id = s.id();
        tasks.spawn(async move { echo(s).await.map_err(|e| format!("echo {id}: {e}")) });
    }
    let mut count = 0;
    let mut first_err = None;
    while let Some(r) = tasks.join_next().await {
        let Ok(r) = r else {
            panic!("an echo task panicked");
        };
        match r {
            Ok(_) => count += 1,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    (count, first_err)
}

/// Writes `data` and closes the write side while reading the echo to EOF.
async fn send_and_collect(stream: Stream, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let (mut r, mut w) = tokio::io::split(stream);
    let mut back = Vec::with_capacity(data.len());
    let (wrote, read) = tokio::join!(
        async {
            w.write_all(data).await?;
            w.shutdown().await
        },
        r.read_to_end(&mut back)
    );
    wrote?;
    read?;
    Ok(back)
}

fn describe(e: &std::io::Error) -> String {
    match StreamError::from_io(e) {
        Some(se) => format!("{se:?}"),
        None => format!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_streams_each_echo_16_kib_without_any_reset() {
    const STREAMS: u64 = 1000;
    const LEN: usize = 16 * 1024;
    bounded(async {
        let (client, server) = pair();
        let server_stats = server.clone();
        let srv = tokio::spawn(echo_server(server));

        let mut tasks = JoinSet::new();
        for i in 0..STREAMS {
            let client = client.clone();
            tasks.spawn(async move {
                let s = client
                    .open_stream()
                    .await
                    .map_err(|e| format!("open {i}: {e:?}"))?;
                let data = pattern(i, LEN);
                let back = send_and_collect(s, &data)
                    .await
                    .map_err(|e| format!("stream {i}: {}", describe(&e)))?;
                if back != data {
                    return Err(format!("stream {i}: echo differs ({} bytes)", back.len()));
                }
                Ok(())
            });
        }
        let mut errors = Vec::new();
        let mut done = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(()) => done += 1,
                Err(e) => errors.push(e),
            }
        }
        assert!(
            errors.is_empty(),
            "{} failed, e.g. {:?}",
            errors.len(),
            errors.first()
        );
        assert_eq!(done, STREAMS);

        let ss = server_stats.stats();
        assert_eq!((ss.streams_refused, ss.peer_error_resets), (0, 0), "{ss:?}");
        assert_eq!(ss.bytes_received, STREAMS * LEN as u64);
        client.close().await.unwrap();
        let (echoed, err) = srv.await.unwrap();
        assert_eq!(err, None);
        assert_eq!(echoed, STREAMS as usize);
    })
    .await;
}

#[tokio::test]
async fn twenty_thousand_sequential_open_write_close_cycles_reclaim_every_stream() {
    const CYCLES: u32 = 20_000;
    bounded(async {
        let (client, server) = pair();
        let server_stats = server.clone();
        let srv = tokio::spawn(async move {
            for i in 0..CYCLES {
                let mut s = server.accept_stream().await.expect("accept");
                let mut got = Vec::with_capacity(1);
                s.read_to_end(&mut got).await.expect("server read");
                assert_eq!(got, [i as u8], "cycle {i}");
                // Dropping the handle sends FIN.
            }
            server
        });

        for i in 0..CYCLES {
            let mut s = client.open_stream().await.expect("open");
            s.write_all(&[i as u8]).await.unwrap();
            s.shutdown().await.unwrap();
            // The server's FIN: the stream is finished on both sides.
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            drop(s);
            assert_eq!(client.stats().streams, 0, "cycle {i}: stream not reclaimed");
        }
        let _server = srv.await.unwrap();

        let cs = client.stats();
        let ss = server_stats.stats();
        assert_eq!((cs.streams, ss.streams), (0, 0), "{cs:?} {ss:?}");
        assert_eq!(ss.bytes_received, u64::from(CYCLES));
        assert_eq!(ss.streams_refused, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_echo_4_connections_32_streams_50_random_messages_each_verified_in_order() {
    const CONNS: u64 = 4;
    const STREAMS: u64 = 32;
    const MESSAGES: usize = 50;
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            for _ in 0..CONNS {
                let (tcp, _) = listener.accept().await.unwrap();
                tcp.set_nodelay(true).unwrap();
                conns.spawn(echo_server(Connection::new(
                    tcp,
                    Role::Server,
                    Config::default(),
                )));
            }
            let mut total = 0;
            while let Some(r) = conns.join_next().await {
                let (count, err) = r.unwrap();
                assert_eq!(err, None);
                total += count;
            }
            total
        });

        let mut conns = JoinSet::new();
        for c in 0..CONNS {
            conns.spawn(async move {
                let tcp = TcpStream::connect(addr).await.unwrap();
                tcp.set_nodelay(true).unwrap();
                let conn = Connection::new(tcp, Role::Client, Config::default());
                let mut streams = JoinSet::new();
                for s in 0..STREAMS {
                    let conn = conn.clone();
                    let seed = c * STREAMS + s;
                    streams.spawn(async move {
                        let stream = conn.open_stream().await.unwrap();
                        let (mut r, mut w) = tokio::io::split(stream);
                        // Pipelined: the writer does not wait for echoes; the
                        // reader regenerates the same messages to check them.
                        let writer = async move {
                            let mut rng = StdRng::seed_from_u64(seed);
                            for _ in 0..MESSAGES {
                                let mut msg = vec![0u8; rng.random_range(1..=8192)];
                                rng.fill(&mut msg[..]);
                                w.write_all(&msg).await?;
                            }
                            w.shutdown().await
                        };
                        let reader = async move {
                            let mut rng = StdRng::seed_from_u64(seed);
                            for m in 0..MESSAGES {
                                let mut msg = vec![0u8; rng.random_range(1..=8192)];
                                rng.fill(&mut msg[..]);
                                let mut back = vec![0u8; msg.len()];
                                r.read_exact(&mut back).await?;
                                assert!(back == msg, "stream {seed}: message {m} differs");
                            }
                            let tail = r.read(&mut [0u8; 1]).await?;
                            assert_eq!(tail, 0, "stream {seed}: EOF after the last echo");
                            Ok::<_, std::io::Error>(())
                        };
                        let (w, r) = tokio::join!(writer, reader);
                        w.map_err(|e| describe(&e))?;
                        r.map_err(|e| describe(&e))
                    });
                }
                let mut ok = 0;
                while let Some(r) = streams.join_next().await {
                    r.unwrap().unwrap();
                    ok += 1;
                }
                conn.close().await.unwrap();
                ok
            });
        }
        let mut ok = 0;
        while let Some(r) = conns.join_next().await {
            ok += r.unwrap();
        }
        assert_eq!(ok, CONNS * STREAMS);
        assert_eq!(srv.await.unwrap(), (CONNS * STREAMS) as usize);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_reader_blocks_only_its_own_stream_while_ten_others_move_4_mib_each() {
    const BUSY: u64 = 10;
    const BUSY_LEN: usize = 4 << 20;
    // Far beyond one window plus the send buffer, so the writer must block.
    const STALLED_LEN: usize = 2 << 20;
    bounded(async {
        let (client, server) = pair();

        let stalled_c = client.open_stream().await.unwrap();
        let mut stalled_s = server.accept_stream().await.unwrap();
        let stalled_data = Arc::new(pattern(1000, STALLED_LEN));
        let stalled_writer = {
            let data = stalled_data.clone();
            tokio::spawn(async move {
                let mut s = stalled_c;
                s.write_all(&data).await?;
                s.shutdown().await?;
                Ok::<_, std::io::Error>(s)
            })
        };

        let mut tasks = JoinSet::new();
        for i in 0..BUSY {
            let mut c = client.open_stream().await.unwrap();
            let mut s = server.accept_stream().await.unwrap();
            let data = Arc::new(pattern(i, BUSY_LEN));
            let expected = data.clone();
            tasks.spawn(async move {
                c.write_all(&data).await?;
                c.shutdown().await?;
                Ok::<_, std::io::Error>(None)
            });
            tasks.spawn(async move {
                let mut got = Vec::with_capacity(BUSY_LEN);
                s.read_to_end(&mut got).await?;
                Ok(Some(got == *expected))
            });
        }
        let mut verified = 0;
        while let Some(r) = tasks.join_next().await {
            match r.unwrap() {
                Ok(Some(same)) => {
                    assert!(same, "a busy stream delivered wrong bytes");
                    verified += 1;
                }
                Ok(None) => {}
                Err(e) => panic!("busy stream failed: {}", describe(&e)),
            }
        }
        assert_eq!(verified, BUSY);
        assert!(
            !stalled_writer.is_finished(),
            "the stalled stream's writer is blocked by its window"
        );

        let mut got = Vec::with_capacity(STALLED_LEN);
        stalled_s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), STALLED_LEN);
        assert!(got == *stalled_data, "stalled stream bytes differ");
        let _c = stalled_writer.await.unwrap().unwrap();

        let (cs, ss) = (client.stats(), server.stats());
        assert_eq!(cs.peer_error_resets + ss.peer_error_resets, 0);
        assert_eq!(
            ss.bytes_received,
            BUSY * BUSY_LEN as u64 + STALLED_LEN as u64
        );
    })
    .await;
}

/// With few or no read blocks kept for reuse (`Config::read_blocks_kept`),
/// every byte of eight concurrent 4 MiB echoes over real TCP still comes
/// back in order: blocks the streams still read from are never reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_tcp_is_intact_with_no_or_two_read_blocks_kept() {
    for kept in [0, 2] {
        let mut config = Config::default();
        config.read_blocks_kept = kept;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server_config = config.clone();
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.expect("accept");
            echo_server(Connection::new(sock, Role::Server, server_config)).await
        });
        let sock = TcpStream::connect(addr).await.expect("connect");
        let client = Connection::new(sock, Role::Client, config);
        let mut tasks = JoinSet::new();
        for seed in 0..8u64 {
            let client = client.clone();
            tasks.spawn(async move {
                let data = pattern(seed, 4 << 20);
                let stream = client.open_stream().await.expect("open");
                let back = send_and_collect(stream, &data).await.expect("echo");
                assert!(back == data, "kept {kept}, stream {seed}: echo differs");
            });
        }
        bounded(async {
            while let Some(r) = tasks.join_next().await {
                r.expect("a client task panicked");
            }
        })
        .await;
        client.close().await.expect("close");
        let (count, err) = bounded(server).await.expect("server task");
        assert_eq!((count, err), (8, None), "kept {kept}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_keeps_sending_to_a_dropped_stream_over_tcp_is_reset_and_still_reads_the_answer(
) {
    let mut config = Config::default();
    // Only the dropped-stream rule, not the close_timeout deadline, can end the writer.
    config.close_timeout = Duration::from_secs(3600);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_config = config.clone();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.expect("accept");
        let conn = Connection::new(sock, Role::Server, server_config);
        let mut s = conn.accept_stream().await.expect("accept stream");
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.expect("first byte");
        s.write_all(b"no thanks").await.expect("answer");
        drop(s); // while the client is still sending
        conn
    });
    let sock = TcpStream::connect(addr).await.expect("connect");
    let client = Connection::new(sock, Role::Client, config);
    let mut s = client.open_stream().await.expect("open");
    s.write_all(b"q").await.expect("first byte");
    // An upload answered early (HTTP's 413): the client writes on without
    // reading, and still gets the answer after its writes are refused.
    let chunk = vec![7u8; 64 * 1024];
    let err = bounded(async {
        let mut sent = 0usize;
        loop {
            if let Err(e) = s.write_all(&chunk).await {
                break (e, sent);
            }
            sent += chunk.len();
        }
    })
    .await;
    let (err, sent) = err;
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    let typed = StreamError::from_io(&err).expect("typed");
    assert!(typed.is_remote(), "{typed}");
    assert_eq!(
        typed.reset_code(),
        Some(mux_yamux_lite::frame::reset_code::DROPPED)
    );
    // Bounded by the credit held at the drop (plus what the write buffer takes).
    assert!(sent <= 4 << 20, "{sent} bytes went to a dropped stream");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.expect("answer then EOF");
    assert_eq!(answer, b"no thanks");
    let _server_conn = server.await.expect("server task");
}
