//! What the integration tests share: the `mux-tunnel` binary run as a
//! process whose stdout lines are awaited (never slept on), a TCP echo
//! server, and a checked echo exchange. Every wait is bounded.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::{
    net::SocketAddr,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines},
    net::{TcpListener, TcpStream},
    process::{Child, ChildStdout, Command},
    time::timeout,
};

/// The bound on waiting for a process to print a line or exit.
pub(crate) const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `mux-tunnel`, killed when dropped.
pub(crate) struct Proc {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    stderr_done: Option<tokio::task::JoinHandle<()>>,
    name: String,
}

impl Proc {
    /// Starts `mux-tunnel ARGS...`.
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mux-tunnel"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mux-tunnel");
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        let stderr_done = tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
        });
        Self {
            child,
            stdout,
            stderr,
            stderr_done: Some(stderr_done),
            name: args.first().copied().unwrap_or("?").to_owned(),
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest.
    pub(crate) async fn line(&mut self, prefix: &str) -> String {
        let wait = async {
            loop {
                match self.stdout.next_line().await.unwrap() {
                    Some(line) => {
                        if let Some(rest) = line.strip_prefix(prefix) {
                            return rest.trim().to_owned();
                        }
                    }
                    None => panic!(
                        "{} exited before printing {prefix:?}; stderr:\n{}",
                        self.name,
                        self.stderr()
                    ),
                }
            }
        };
        match timeout(LINE_TIMEOUT, wait).await {
            Ok(rest) => rest,
            Err(_) => panic!(
                "{} did not print {prefix:?} in time; stderr:\n{}",
                self.name,
                self.stderr()
            ),
        }
    }

    /// What it printed on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for it to exit.
    pub(crate) async fn exit(&mut self) -> ExitStatus {
        timeout(LINE_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit; stderr:\n{}", self.name, self.stderr()))
            .unwrap()
    }

    /// Waits for it to exit, then for its stderr to be read.
    pub(crate) async fn exit_with_stderr(&mut self) -> (ExitStatus, String) {
        let status = self.exit().await;
        // stderr's reader ends at EOF, right after the exit.
        if let Some(done) = self.stderr_done.take() {
            let _ = timeout(LINE_TIMEOUT, done).await;
        }
        (status, self.stderr())
    }

    /// Kills it.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// Starts `mux-tunnel server --listen 127.0.0.1:0 EXTRA...` and returns it
/// with its URL.
pub(crate) async fn server(extra: &[&str]) -> (Proc, String) {
    let mut args = vec!["server", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut server = Proc::start(&args);
    let addr = server.line("listening ").await;
    (server, format!("http://{addr}/"))
}

/// Starts `mux-tunnel client OPTIONS... URL REMOTES...` and waits for
/// `connected`, returning the local addresses of its forward remotes (the
/// `forward ADDR => TARGET` lines), in order.
pub(crate) async fn client(
    options: &[&str],
    url: &str,
    remotes: &[&str],
) -> (Proc, Vec<SocketAddr>) {
    let mut all = vec!["client"];
    all.extend_from_slice(options);
    all.push(url);
    all.extend_from_slice(remotes);
    let forwards = remotes
        .iter()
        .filter(|r| !r.starts_with("R:") && !r.starts_with("stdio:") && !r.ends_with("socks"))
        .count();
    let mut client = Proc::start(&all);
    let mut addrs = Vec::new();
    for _ in 0..forwards {
        let line = client.line("forward ").await;
        let addr = line.split_whitespace().next().unwrap();
        addrs.push(addr.parse().unwrap());
    }
    client.line("connected").await;
    (client, addrs)
}

/// A TCP echo server on 127.0.0.1: echoes each connection, then closes its
/// write side when the client closes its own.
pub(crate) async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// The byte at `offset` of connection `seed`'s pattern.
pub(crate) fn pattern(seed: u64, offset: u64) -> u8 {
    (offset.wrapping_mul(31).wrapping_add(seed.wrapping_mul(7)) % 251) as u8
}

/// Sends `len` pattern bytes through `addr`, closes the write side, reads
/// the echo to EOF and checks every byte.
pub(crate) async fn echo_check(addr: SocketAddr, seed: u64, len: u64) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut r, mut w) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let mut offset = 0u64;
        let mut buf = vec![0u8; 32 * 1024];
        while offset < len {
            let n = (len - offset).min(buf.len() as u64) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = pattern(seed, offset + i as u64);
            }
            w.write_all(&buf[..n]).await.unwrap();
            offset += n as u64;
        }
        w.shutdown().await.unwrap();
    });
    let mut offset = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(
                b,
                pattern(seed, offset + i as u64),
                "connection {seed}, byte {}",
                offset + i as u64
            );
        }
        offset += n as u64;
    }
    assert_eq!(offset, len, "connection {seed}: echo length");
    writer.await.unwrap();
}

/// A port nothing listens on (bound, then released).
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
