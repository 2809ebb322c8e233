//! The mux-tunnel runner: throughput and connection setup time of a TCP
//! connection forwarded by `mux-tunnel` (h2c, and TLS with a pinned
//! certificate) against a direct loopback connection and OpenSSH's
//! `ssh -L`, for 1 and 100 concurrent connections, in one run; prints a
//! markdown table of medians.
//!
//! ```text
//! cargo build --release -p mux-tunnel -p mux-benches --bin tunnel
//! target/release/tunnel [--runs 5] [--single-mib 256] [--each-mib 4] [--no-ssh]
//!                       [--client-arg ARG]... [--mux-tunnel PATH]
//! ```
//!
//! Every path ends at the same sink on 127.0.0.1, which reads a connection
//! to its end and answers with the byte count. Throughput: write N bytes
//! (256 KiB writes), close the write side, wait for the count; bytes over
//! wall time, all connections together. Setup: connect, send one byte,
//! close, wait for the count (the target was reached and answered): the
//! median of 50 one at a time, and the wall time of 100 at once. The paths
//! take turns run by run. `ssh -L` runs against a throwaway `sshd` on a
//! free port with keys generated in a temporary directory; without
//! `/usr/sbin/sshd` or `ssh-keygen` its column says why it is missing.

// A measurement tool: it reports on stdout/stderr, and panics on a broken
// setup; its arithmetic is on small local numbers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use clap::Parser;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

/// Throughput and setup time of mux-tunnel against direct loopback and
/// `ssh -L`.
#[derive(Debug, Parser)]
struct Args {
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// MiB sent over the single connection.
    #[arg(long, default_value_t = 256)]
    single_mib: u64,
    /// MiB sent over each of the 100 concurrent connections.
    #[arg(long, default_value_t = 4)]
    each_mib: u64,
    /// Leave `ssh -L` out.
    #[arg(long)]
    no_ssh: bool,
    /// The mux-tunnel binary (default: next to this one).
    #[arg(long)]
    mux_tunnel: Option<PathBuf>,
    /// An extra argument for `mux-tunnel client` (e.g. `--client-arg=--mode
    /// --client-arg=upgrade`); repeatable.
    #[arg(long, allow_hyphen_values = true)]
    client_arg: Vec<String>,
}

const MIB: u64 = 1024 * 1024;
const WRITE: usize = 256 * 1024;
const SETUP_SEQUENTIAL: usize = 50;
const CONCURRENT: usize = 100;

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program args`, and reads its stdout until a line starting with
/// each prefix in turn; returns the rest of each.
fn start(program: &Path, args: &[&str], prefixes: &[&str]) -> (Proc, Vec<String>) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = Vec::new();
    for prefix in prefixes {
        loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{} exited before {prefix:?}", program.display()))
                .unwrap();
            if let Some(rest) = line.strip_prefix(prefix) {
                found.push(rest.trim().to_owned());
                break;
            }
        }
    }
    // Keep draining stdout so that the child never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), found)
}

/// The sink: reads each connection to its end, answers with the count.
async fn sink() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; WRITE];
                let mut total = 0u64;
                loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => total += n as u64,
                        Err(_) => return,
                    }
                }
                let _ = tcp.write_all(&total.to_be_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// Sends `bytes` through `addr` and waits for the sink's count.
async fn send(addr: SocketAddr, bytes: u64) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let buf = vec![0x5au8; WRITE];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(WRITE as u64) as usize;
        tcp.write_all(&buf[..n]).await.unwrap();
        left -= n as u64;
    }
    tcp.shutdown().await.unwrap();
    let mut count = [0u8; 8];
    tcp.read_exact(&mut count).await.unwrap();
    assert_eq!(u64::from_be_bytes(count), bytes, "the sink's count");
}

/// MiB/s of `connections` × `bytes` at once.
async fn throughput(addr: SocketAddr, connections: usize, bytes: u64) -> f64 {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..connections {
        set.spawn(send(addr, bytes));
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    (connections as u64 * bytes) as f64 / MIB as f64 / started.elapsed().as_secs_f64()
}

/// The median setup time of connections one at a time, in ms.
async fn setup_sequential(addr: SocketAddr) -> f64 {
    let mut times = Vec::new();
    for _ in 0..SETUP_SEQUENTIAL {
        let started = Instant::now();
        send(addr, 1).await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    median(&mut times)
}

/// The wall time of 100 setups at once, in ms.
async fn setup_concurrent(addr: SocketAddr) -> f64 {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..CONCURRENT {
        set.spawn(send(addr, 1));
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
    started.elapsed().as_secs_f64() * 1000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// A mux-tunnel server and client forwarding a local port to `target`;
/// with `tls`, the server's certificate is self-signed and pinned.
fn mux_tunnel(
    binary: &Path,
    target: SocketAddr,
    tls: bool,
    extra: &[String],
) -> (Vec<Proc>, SocketAddr) {
    let server_flags: &[&str] = if tls {
        &["server", "--listen", "127.0.0.1:0", "--tls-self-signed"]
    } else {
        &["server", "--listen", "127.0.0.1:0"]
    };
    let prefixes: &[&str] = if tls {
        &["fingerprint ", "listening "]
    } else {
        &["listening "]
    };
    let (server, found) = start(binary, server_flags, prefixes);
    let listen = found.last().unwrap().clone();
    let remote = format!("127.0.0.1:0:{target}");
    let (url, fingerprint) = if tls {
        (format!("https://{listen}/"), Some(found[0].clone()))
    } else {
        (format!("http://{listen}/"), None)
    };
    let mut args = vec!["client"];
    args.extend(extra.iter().map(String::as_str));
    if let Some(fingerprint) = &fingerprint {
        args.extend(["--fingerprint", fingerprint.as_str()]);
    }
    args.extend([url.as_str(), remote.as_str()]);
    let (client, found) = start(binary, &args, &["forward ", "connected"]);
    let local = found[0].split_whitespace().next().unwrap().parse().unwrap();
    // The client first, so that it does not see its server go.
    (vec![client, server], local)
}

/// A throwaway sshd and an `ssh -L` to `target`, or why not.
fn ssh_forward(target: SocketAddr) -> Result<(Vec<Proc>, SocketAddr, PathBuf), String> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        return Err("no /usr/sbin/sshd (apt-get install openssh-server)".into());
    }
    let dir = std::env::temp_dir().join(format!("mux-tunnel-bench-ssh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for key in ["host_key", "client_key"] {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(key))
            .status()
            .map_err(|e| format!("ssh-keygen: {e}"))?;
        if !status.success() {
            return Err(format!("ssh-keygen failed: {status}"));
        }
    }
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
        .map_err(|e| e.to_string())?;
    // sshd running as root wants its privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
         StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\nAllowTcpForwarding yes\n",
        dir.join("host_key").display(),
        dir.join("authorized_keys").display(),
        dir.join("sshd.pid").display(),
    );
    std::fs::write(dir.join("sshd_config"), config).map_err(|e| e.to_string())?;
    let daemon = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("sshd: {e}"))?;
    let daemon = Proc(daemon);
    let local_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let user = std::env::var("USER")
        .ok()
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "root".into());
    // sshd needs a moment to bind: try the client a few times.
    for _ in 0..50 {
        let client = Command::new("ssh")
            .args([
                "-N",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "LogLevel=ERROR",
                "-i",
            ])
            .arg(dir.join("client_key"))
            .args(["-p", &port.to_string(), "-L"])
            .arg(format!("127.0.0.1:{local_port}:{target}"))
            .arg(format!("{user}@127.0.0.1"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("ssh: {e}"))?;
        let mut client = Proc(client);
        let local: SocketAddr = format!("127.0.0.1:{local_port}").parse().unwrap();
        for _ in 0..40 {
            if let Ok(Some(_exited)) = client.0.try_wait() {
                break;
            }
            if std::net::TcpStream::connect(local).is_ok() {
                return Ok((vec![client, daemon], local, dir));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(client);
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Err("sshd did not accept the forwarding (see `sshd -d -f CONFIG`)".into())
}

/// One measured path.
struct Measured {
    name: &'static str,
    addr: SocketAddr,
    /// [single MiB/s, 100 MiB/s, setup ms, 100 setups ms], one per run.
    figures: [Vec<f64>; 4],
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let binary = args.mux_tunnel.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap()
            .with_file_name("mux-tunnel")
    });
    assert!(
        binary.exists(),
        "{}: build it with cargo build --release -p mux-tunnel",
        binary.display()
    );
    let target = runtime.block_on(sink());
    let mut keep = Vec::new();
    let mut paths = vec![Measured {
        name: "direct",
        addr: target,
        figures: Default::default(),
    }];
    let (procs, addr) = mux_tunnel(&binary, target, false, &args.client_arg);
    keep.extend(procs);
    paths.push(Measured {
        name: "mux-tunnel",
        addr,
        figures: Default::default(),
    });
    let (procs, addr) = mux_tunnel(&binary, target, true, &args.client_arg);
    keep.extend(procs);
    paths.push(Measured {
        name: "mux-tunnel TLS",
        addr,
        figures: Default::default(),
    });
    let mut ssh_note = None;
    let mut ssh_dir = None;
    if args.no_ssh {
        ssh_note = Some("left out (--no-ssh)".to_owned());
    } else {
        match ssh_forward(target) {
            Ok((procs, addr, dir)) => {
                keep.extend(procs);
                ssh_dir = Some(dir);
                paths.push(Measured {
                    name: "ssh -L",
                    addr,
                    figures: Default::default(),
                });
            }
            Err(why) => {
                eprintln!("ssh -L left out: {why}");
                ssh_note = Some(why);
            }
        }
    }
    let started = Instant::now();
    for run in 0..args.runs {
        let count = paths.len();
        for turn in 0..count {
            let path = &mut paths[(run + turn) % count];
            let addr = path.addr;
            let figures = runtime.block_on(async {
                [
                    throughput(addr, 1, args.single_mib * MIB).await,
                    throughput(addr, CONCURRENT, args.each_mib * MIB).await,
                    setup_sequential(addr).await,
                    setup_concurrent(addr).await,
                ]
            });
            eprintln!(
                "run {run} {}: {:.0} MiB/s, {:.0} MiB/s x100, setup {:.3} ms, 100 setups {:.1} ms",
                path.name, figures[0], figures[1], figures[2], figures[3]
            );
            for (all, figure) in path.figures.iter_mut().zip(figures) {
                all.push(figure);
            }
        }
    }
    let elapsed = started.elapsed();
    drop(keep);
    if let Some(dir) = ssh_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let medians: Vec<[f64; 4]> = paths
        .iter_mut()
        .map(|p| {
            let mut out = [0.0; 4];
            for (o, all) in out.iter_mut().zip(p.figures.iter_mut()) {
                *o = median(all);
            }
            out
        })
        .collect();
    let rows = [
        (
            format!("throughput, 1 connection × {} MiB", args.single_mib),
            "MiB/s ↑",
        ),
        (
            format!(
                "throughput, {CONCURRENT} connections × {} MiB",
                args.each_mib
            ),
            "MiB/s ↑",
        ),
        (
            format!("setup, 1 connection (median of {SETUP_SEQUENTIAL})"),
            "ms ↓",
        ),
        (format!("setup, {CONCURRENT} connections at once"), "ms ↓"),
    ];
    println!(
        "mux-tunnel runner: {} run(s) per figure (median), paths taking turns, {} cores, took {:.0} s.\n",
        args.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        elapsed.as_secs_f64()
    );
    let mut header = "| measure | unit |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for p in &paths {
        header.push_str(&format!(" {} |", p.name));
        rule.push_str("---:|");
    }
    if ssh_note.is_some() {
        header.push_str(" ssh -L |");
        rule.push_str("---|");
    }
    header.push_str(" mux-tunnel ÷ direct |");
    rule.push_str("---:|");
    let ssh = paths.iter().position(|p| p.name == "ssh -L");
    if ssh.is_some() {
        header.push_str(" mux-tunnel ÷ ssh -L |");
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    for (i, (name, unit)) in rows.iter().enumerate() {
        let mut line = format!("| {name} | {unit} |");
        for m in &medians {
            if i < 2 {
                line.push_str(&format!(" {:.0} |", m[i]));
            } else {
                line.push_str(&format!(" {:.2} |", m[i]));
            }
        }
        if let Some(note) = &ssh_note {
            line.push_str(&format!(" n/a ({note}) |"));
        }
        let ratio = |a: f64, b: f64| format!(" {:.2}× |", a / b);
        line.push_str(&ratio(medians[1][i], medians[0][i]));
        if let Some(ssh) = ssh {
            line.push_str(&ratio(medians[1][i], medians[ssh][i]));
        }
        println!("{line}");
    }
}
