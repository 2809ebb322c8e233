//! Interoperability on the yamux wire with hashicorp/yamux in Go, in both
//! roles, over TCP on 127.0.0.1. The peer is `tests/go_peer/main.go`,
//! built here from Debian's `golang-go` and
//! `golang-github-hashicorp-yamux-dev` (a 2019 snapshot); `.ci/run` installs
//! both. Without them the tests fail in CI (`CI` set) and say why, and are
//! skipped elsewhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::arithmetic_side_effects
)]

mod interop;

use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use interop::{echo, pattern, round_trip, yamux_config};
use mux_core::{MuxedStream, ShutdownOutcome, StreamError};
use mux_yamux_lite::{Config, Connection, Role};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Bound on each test case, so a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(90);
const STREAMS: usize = 64;
const LEN: usize = 1 << 20;

/// Builds the Go peer once; `None` (after saying why) when Go or the yamux
/// package is missing outside CI.
fn go_peer() -> Option<&'static PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go_peer");
        let bin = dir.join("go_peer");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/go_peer/main.go");
        let out = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(&src)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", dir.join("cache"))
            .output()
            .map_err(|e| format!("cannot run `go` ({e})"))?;
        if !out.status.success() {
            return Err(format!(
                "`go build` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(bin)
    });
    match built {
        Ok(bin) => Some(bin),
        Err(why) => {
            let how = "install Debian's golang-go and golang-github-hashicorp-yamux-dev";
            assert!(
                std::env::var_os("CI").is_none(),
                "the hashicorp/yamux peer is needed in CI: {why}; {how}"
            );
            eprintln!("skipping the Go interop tests: {why}; {how}");
            None
        }
    }
}

/// A running Go peer: its process and its command pipe.
struct GoPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl GoPeer {
    /// Sends a command and returns the peer's one-line answer.
    async fn command(&mut self, line: &str) -> String {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).await.unwrap();
        answer.trim().to_owned()
    }
}

impl Drop for GoPeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Our connection and a Go peer; ours is the client when `ours_dials`.
async fn connect(bin: &PathBuf, ours_dials: bool) -> (Connection, GoPeer) {
    connect_with(bin, ours_dials, &[], yamux_config()).await
}

/// [`connect`] with our `config` and the peer's environment `env` (the
/// settings its header comment lists).
async fn connect_with(
    bin: &PathBuf,
    ours_dials: bool,
    env: &[(&str, &str)],
    config: Config,
) -> (Connection, GoPeer) {
    let spawn = |role: &str, addr: &str| {
        Command::new(bin)
            .args([role, addr])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    if ours_dials {
        let mut child = spawn("server", "127.0.0.1:0");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        let addr = line.trim().strip_prefix("listening ").expect("the address");
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let stdin = child.stdin.take().unwrap();
        let conn = Connection::new(tcp, Role::Client, config);
        (
            conn,
            GoPeer {
                child,
                stdin,
                stdout,
            },
        )
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut child = spawn("client", &addr);
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let conn = Connection::new(tcp, Role::Server, config);
        (
            conn,
            GoPeer {
                child,
                stdin,
                stdout,
            },
        )
    }
}

/// Runs `case` in both roles against the Go peer.
async fn both_roles<F, Fut>(case: F)
where
    F: Fn(PathBuf, bool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(bin) = go_peer() else {
        return;
    };
    for ours_dials in [true, false] {
        if tokio::time::timeout(LIMIT, case(bin.clone(), ours_dials))
            .await
            .is_err()
        {
            panic!("ours_dials: {ours_dials}: hung for {LIMIT:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_streams_of_one_mib_echo_whoever_opens_them() {
    both_roles(|bin, ours_dials| async move {
        let (ours, mut go) = connect(&bin, ours_dials).await;
        // We open, Go echoes.
        let mut tasks = tokio::task::JoinSet::new();
        for seed in 0..STREAMS as u32 {
            let s = ours.open_stream().await.unwrap();
            tasks.spawn(async move {
                let data = pattern(seed, LEN);
                let back = round_trip(s, &data).await?;
                assert!(back == data, "stream {seed}: the echo differs");
                Ok::<_, io::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        // Go opens, we echo.
        let server = ours.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok(s) = server.accept_stream().await {
                tokio::spawn(echo(s));
            }
        });
        let answer = go.command(&format!("open {STREAMS} {LEN}")).await;
        assert_eq!(answer, format!("ok {STREAMS}"));
        assert_eq!(ours.stats().peer_error_resets, 0);
        assert!(!ours.is_closed());
        acceptor.abort();
    })
    .await;
}

#[tokio::test]
async fn an_answer_after_a_half_close_arrives() {
    both_roles(|bin, ours_dials| async move {
        let (ours, _go) = connect(&bin, ours_dials).await;
        // Go's echo answers after it read our half-close.
        let mut s = ours.open_stream().await.unwrap();
        s.write_all(b"question").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"question");
    })
    .await;
}

#[tokio::test]
async fn shutdown_with_a_live_stream_delivers_every_byte_then_ends() {
    both_roles(|bin, ours_dials| async move {
        let (ours, _go) = connect(&bin, ours_dials).await;
        let s = ours.open_stream().await.unwrap();
        let data = pattern(9, LEN);
        let transfer = {
            let data = data.clone();
            tokio::spawn(async move { round_trip(s, &data).await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let outcome = ours.shutdown(deadline).await;
        let back = transfer.await.unwrap().unwrap();
        assert!(back == data, "bytes lost in the shutdown");
        assert_eq!(outcome.unwrap(), ShutdownOutcome::Drained);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_opens_from_go_before_any_accept_all_complete() {
    both_roles(|bin, ours_dials| async move {
        let (ours, mut go) = connect(&bin, ours_dials).await;
        // Go opens 300 streams at once and writes on each; we accept none
        // until our backlog holds 256 of them. hashicorp/yamux holds back
        // opens beyond 256 unacknowledged, so none is refused.
        let opens = tokio::spawn(async move {
            let answer = go.command("open 300 4").await;
            (answer, go)
        });
        while ours.stats().streams < 256 {
            tokio::task::yield_now().await;
        }
        let server = ours.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok(s) = server.accept_stream().await {
                tokio::spawn(echo(s));
            }
        });
        let (answer, _go) = opens.await.unwrap();
        assert_eq!(answer, "ok 300");
        assert_eq!(ours.stats().streams_refused, 0);
        assert!(!ours.is_closed());
        acceptor.abort();
    })
    .await;
}

/// Echoes every stream Go opens from now on, until aborted.
fn echo_all(ours: &Connection) -> tokio::task::JoinHandle<()> {
    let server = ours.clone();
    tokio::spawn(async move {
        while let Ok(s) = server.accept_stream().await {
            tokio::spawn(echo(s));
        }
    })
}

/// Whether `e` is a reset of the stream by the peer (not the connection
/// ending, which has the same `io::ErrorKind`).
fn is_remote_reset(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ConnectionReset
        && matches!(
            StreamError::from_io(e),
            Some(StreamError::Reset { remote: true, .. })
        )
}

#[tokio::test]
async fn our_reset_fails_go_s_read_and_write() {
    both_roles(|bin, ours_dials| async move {
        let (ours, mut go) = connect(&bin, ours_dials).await;
        // A stream Go opened: its pending read and its next write fail
        // with ErrConnectionReset.
        let (answer, ()) = tokio::join!(go.command("awaitreset"), async {
            let mut s = ours.accept_stream().await.unwrap();
            let mut byte = [0u8; 1];
            s.read_exact(&mut byte).await.unwrap();
            assert_eq!(&byte, b"r");
            s.reset_with(7);
        });
        assert_eq!(answer, "reset");

        // A stream we opened, which Go's echo is reading: its echo ends
        // with the reset.
        let mut s = ours.open_stream().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.unwrap();
        s.reset_with(7);
        assert_eq!(go.command("echoerr").await, "echoerr connection reset");

        // Only those streams ended.
        assert!(!ours.is_closed());
        let acceptor = echo_all(&ours);
        assert_eq!(go.command("open 1 16").await, "ok 1");
        acceptor.abort();
    })
    .await;
}

#[tokio::test]
async fn a_stream_go_refuses_reads_as_a_remote_reset() {
    both_roles(|bin, ours_dials| async move {
        // This hashicorp snapshot has no Stream.Reset: the one RST it
        // sends is its refusal of a stream past its accept backlog. With
        // a backlog of 1 and nothing accepted, our second stream is it.
        let env = [("GO_PEER_BACKLOG", "1")];
        let (ours, _go) = connect_with(&bin, ours_dials, &env, yamux_config()).await;
        let mut waiting = ours.open_stream().await.unwrap();
        waiting.write_all(b"a").await.unwrap();
        let mut refused = ours.open_stream().await.unwrap();
        // The RST may already be in when we write.
        if let Err(e) = refused.write_all(b"b").await {
            assert!(is_remote_reset(&e), "write: {e:?}");
        }
        let e = refused.read(&mut [0u8; 8]).await.unwrap_err();
        assert!(is_remote_reset(&e), "read: {e:?}");
        assert!(!ours.is_closed());
        assert_eq!(ours.stats().peer_error_resets, 0);
    })
    .await;
}

#[tokio::test]
async fn an_idle_connection_survives_keepalive_pings_both_ways() {
    both_roles(|bin, ours_dials| async move {
        // Real time, unlike interop_rust's paused-clock keepalive test: the
        // peer is another process, which a paused clock cannot drive. So
        // the intervals are short and the idling lasts 2 s per role. Go
        // pings every 100 ms and ends its session if a pong takes 1 s;
        // ours pings after 40 ms without traffic and gives up after 1 s.
        let mut config = yamux_config();
        config.keepalive_interval = Some(Duration::from_millis(40));
        config.keepalive_timeout = Duration::from_secs(1);
        let env = [("GO_PEER_KEEPALIVE", "100ms")];
        let (ours, mut go) = connect_with(&bin, ours_dials, &env, config).await;
        let counts = |answer: String| -> (u64, u64) {
            let mut n = answer
                .strip_prefix("pings ")
                .unwrap_or_else(|| panic!("{answer}"))
                .split(' ')
                .map(|n| n.parse::<u64>().unwrap());
            (n.next().unwrap(), n.next().unwrap())
        };
        let (sent0, answered0) = counts(go.command("pings").await);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (sent1, answered1) = counts(go.command("pings").await);
        assert!(!ours.is_closed(), "keepalive ended our connection");
        assert!(ours.rtt().is_some(), "no ping of ours was answered");
        // Go went on pinging (so each of its pings had our pong within
        // 1 s), and answered ours.
        assert!(sent1 - sent0 >= 10, "Go sent {} pings", sent1 - sent0);
        assert!(
            answered1 - answered0 >= 10,
            "Go answered {} pings of ours",
            answered1 - answered0
        );
        // Both sides still carry streams.
        assert_eq!(go.command("ping").await, "pong");
        let s = ours.open_stream().await.unwrap();
        assert_eq!(round_trip(s, b"still here").await.unwrap(), b"still here");
        let acceptor = echo_all(&ours);
        assert_eq!(go.command("open 1 16").await, "ok 1");
        acceptor.abort();
    })
    .await;
}

/// Bytes on each of two streams: past the initial 256 KiB window, so the
/// stream carried first needs window updates while the other waits.
const TWO_LEN: usize = 300 * 1024;

#[tokio::test]
async fn two_streams_written_in_the_reverse_of_their_open_order_both_echo() {
    both_roles(|bin, ours_dials| async move {
        let (ours, mut go) = connect(&bin, ours_dials).await;
        // Go opens A then B (its SYNs go out at open, in that order) and
        // round-trips B before it writes on A. We echo B to its end before
        // we touch A, which works only if B's bytes arrive while A waits.
        let server = ours.clone();
        let echoes = tokio::spawn(async move {
            let a = server.accept_stream().await.unwrap();
            let b = server.accept_stream().await.unwrap();
            assert!(a.id() < b.id(), "accepted out of open order");
            let echoed_b = echo(b).await.unwrap();
            let echoed_a = echo(a).await.unwrap();
            (echoed_a, echoed_b)
        });
        assert_eq!(go.command(&format!("opentwo {TWO_LEN}")).await, "ok 2");
        let (echoed_a, echoed_b) = echoes.await.unwrap();
        assert_eq!(echoed_a, TWO_LEN as u64);
        assert_eq!(echoed_b, TWO_LEN as u64);

        // And the other way round: we open A then B, and carry B first.
        let a = ours.open_stream().await.unwrap();
        let b = ours.open_stream().await.unwrap();
        let data_b = pattern(2, TWO_LEN);
        assert!(
            round_trip(b, &data_b).await.unwrap() == data_b,
            "B's echo differs"
        );
        let data_a = pattern(1, TWO_LEN);
        assert!(
            round_trip(a, &data_a).await.unwrap() == data_a,
            "A's echo differs"
        );
        assert!(!ours.is_closed());
    })
    .await;
}
