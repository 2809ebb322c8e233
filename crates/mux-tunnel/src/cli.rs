//! The command line: `mux-tunnel server ...` and `mux-tunnel client ...`
//! (clap derive), and the parsers of its values. docs/TUNNEL.md ("The
//! mux-tunnel command") documents every flag.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use http::{HeaderName, HeaderValue};

use crate::{auth::Credentials, proxy::Proxy, remote::Remote, tls::Fingerprint};

/// Many TCP connections, reverse forwards and SOCKS5 over one HTTP
/// exchange: HTTP/2 CONNECT or POST, or an HTTP/1.1 upgrade, in clear
/// or over TLS.
#[derive(Debug, Parser)]
#[command(name = "mux-tunnel", version)]
pub(crate) struct Cli {
    /// More logs: -v for one line per forwarded connection, -vv for the
    /// layers below. RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// What to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The two sides.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Accept tunnels and connect their streams to their targets. Prints
    /// `listening ADDR` once bound.
    Server(ServerArgs),
    /// Open a tunnel to a server and forward REMOTEs through it. Prints one
    /// line per local listener, then `connected` each time the tunnel is up.
    Client(ClientArgs),
}

/// `mux-tunnel server`.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Address to listen on (HOST:PORT; port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    pub(crate) listen: String,
    /// Let clients listen on this host (R: remotes).
    #[arg(long)]
    pub(crate) reverse: bool,
    /// Let clients' SOCKS5 connections leave from this host (socks remotes).
    #[arg(long)]
    pub(crate) socks: bool,
    /// Require these credentials (HTTP Basic); others get 401.
    #[arg(long, value_name = "USER:PASS", value_parser = Credentials::parse)]
    pub(crate) auth: Option<Credentials>,
    /// Require the credentials of one of the users in FILE, one per line:
    /// `USER:PASS [HOST:PORT]...`; with patterns (HOST or PORT may be *),
    /// the user may reach only matching targets.
    #[arg(long, value_name = "FILE", conflicts_with = "auth")]
    pub(crate) authfile: Option<std::path::PathBuf>,
    /// Send a keepalive ping after this long without traffic (a number of
    /// seconds, or with a unit: 500ms, 25s, 2m, 1h); 0 disables.
    #[arg(long, value_name = "DUR", default_value = "25s", value_parser = parse_duration)]
    pub(crate) keepalive: Duration,
    /// Serve TLS with the certificate chain in this PEM file (leaf first);
    /// needs --tls-key. Prints `fingerprint HEX` (SHA-256 of the leaf).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert, a PEM file (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Serve TLS with a certificate generated at start; prints
    /// `fingerprint HEX` for clients' --fingerprint.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub(crate) tls_self_signed: bool,
}

/// How the client asks for its tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ModeArg {
    /// HTTP/2 CONNECT.
    Connect,
    /// HTTP/2 POST with streaming request and response bodies.
    Post,
    /// HTTP/1.1 `Upgrade: mux-tunnel`.
    Upgrade,
}

impl From<ModeArg> for mux_h2::Mode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Connect => Self::Connect,
            ModeArg::Post => Self::Post,
            ModeArg::Upgrade => Self::Http1Upgrade,
        }
    }
}

/// `mux-tunnel client`.
#[derive(Debug, Args)]
#[command(after_help = REMOTE_HELP)]
pub(crate) struct ClientArgs {
    /// The server's URL, e.g. http://server:8080/ (the path is sent as is;
    /// CONNECT sends only the authority).
    pub(crate) url: String,
    /// What to forward; the forms are listed below.
    #[arg(required = true, value_name = "REMOTE", value_parser = Remote::from_str_arg)]
    pub(crate) remotes: Vec<Remote>,
    /// How to carry the tunnel.
    #[arg(long, value_enum, default_value_t = ModeArg::Connect)]
    pub(crate) mode: ModeArg,
    /// Credentials to send (HTTP Basic).
    #[arg(long, value_name = "USER:PASS", value_parser = Credentials::parse)]
    pub(crate) auth: Option<Credentials>,
    /// An extra request header, 'NAME: VALUE'; repeatable.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Send a keepalive ping after this long without traffic (as the
    /// server's); 0 disables.
    #[arg(long, value_name = "DUR", default_value = "25s", value_parser = parse_duration)]
    pub(crate) keepalive: Duration,
    /// The longest wait between two attempts to open the tunnel; the wait
    /// starts at 100ms and doubles.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub(crate) max_retry_interval: Duration,
    /// Give up after this many failed attempts in a row (default: never).
    #[arg(long, value_name = "N")]
    pub(crate) max_retry_count: Option<u64>,
    /// With an https URL: accept only the server certificate with this
    /// SHA-256 (64 hex digits, colons allowed), instead of verifying it
    /// against the webpki roots.
    #[arg(long, value_name = "SHA256-HEX", value_parser = Fingerprint::parse)]
    pub(crate) fingerprint: Option<Fingerprint>,
    /// Reach the server through this HTTP proxy's CONNECT method:
    /// `http://[USER:PASS@]HOST:PORT`.
    #[arg(long, value_name = "URL", value_parser = Proxy::parse)]
    pub(crate) proxy: Option<Proxy>,
}

/// The REMOTE forms, shown under `mux-tunnel client --help`.
const REMOTE_HELP: &str = "\
REMOTE forms:
  [LOCAL_HOST:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT   listen here, connect there from the server
  R:[REMOTE_HOST:]REMOTE_PORT:LOCAL_HOST:LOCAL_PORT listen on the server, connect here (server needs --reverse)
  [LOCAL_HOST:]LOCAL_PORT:socks | socks             SOCKS5 here, connections leave from the server (server needs --socks)
  stdio:REMOTE_HOST:REMOTE_PORT                     stdin/stdout as one connection (ssh ProxyCommand)
LOCAL_HOST defaults to 127.0.0.1, the SOCKS port to 1080; write IPv6 addresses in brackets.";

impl Remote {
    fn from_str_arg(input: &str) -> Result<Self, String> {
        Self::parse(input).map_err(|e| e.to_string())
    }
}

/// Parses `NAME: VALUE`.
pub(crate) fn parse_header(input: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = input
        .split_once(':')
        .ok_or_else(|| format!("{input:?}: expected 'NAME: VALUE'"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("{input:?}: {e}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("{input:?}: {e}"))?;
    Ok((name, value))
}

/// Parses a duration: a number of seconds (`25`, `0.5`) or a number with
/// one unit (`500ms`, `25s`, `2m`, `1h`).
pub(crate) fn parse_duration(input: &str) -> Result<Duration, String> {
    let bad = || format!("{input:?}: expected seconds or a number with ms, s, m or h (e.g. 25s)");
    let split = input
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(input.len());
    let (number, unit) = input.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25").unwrap(), Duration::from_secs(25));
        assert_eq!(parse_duration("25s").unwrap(), Duration::from_secs(25));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "s", "5 days", "-1", "1e999", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers() {
        let (name, value) = parse_header("X-Token:  abc ").unwrap();
        assert_eq!(name, "x-token");
        assert_eq!(value, "abc");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: v").is_err());
    }

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// docs/TUNNEL.md documents every flag of both sides.
    #[test]
    fn tunnel_md_documents_every_flag() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/TUNNEL.md");
        let doc = std::fs::read_to_string(path).unwrap();
        let section = doc.split("## The mux-tunnel command").nth(1).unwrap();
        let command = Cli::command();
        for side in command.get_subcommands() {
            for arg in side.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if long == "help" || long == "version" {
                    continue;
                }
                assert!(
                    section.contains(&format!("`--{long}")),
                    "docs/TUNNEL.md does not document {} --{long}",
                    side.get_name()
                );
            }
        }
    }
}
