//! REMOTE arguments: what the client forwards, parsed by one pure function,
//! [`Remote::parse`].
//!
//! | form | meaning |
//! |---|---|
//! | `[LOCAL_HOST:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT` | listen here, connect there from the server |
//! | `R:[REMOTE_HOST:]REMOTE_PORT:LOCAL_HOST:LOCAL_PORT` | listen on the server, connect here |
//! | `[LOCAL_HOST:]LOCAL_PORT:socks` or `socks` | a SOCKS5 proxy here whose connections leave from the server |
//! | `stdio:REMOTE_HOST:REMOTE_PORT` | stdin and stdout as one connection |
//!
//! A listening host defaults to `127.0.0.1`, a SOCKS port to 1080. IPv6
//! literals go in brackets (`[::1]:8080:[::1]:80`); hosts are kept without
//! them. A listening port may be 0 (the system picks one, and the client
//! prints it); a target port may not.

use std::fmt;

/// The host a listener binds to when the REMOTE names none.
pub(crate) const DEFAULT_LISTEN_HOST: &str = "127.0.0.1";

/// The SOCKS5 port when the REMOTE names none.
pub(crate) const DEFAULT_SOCKS_PORT: u16 = 1080;

/// A host (name or IP literal, without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HostPort {
    /// A DNS name or an IP literal; never empty, never bracketed.
    pub(crate) host: String,
    /// The port.
    pub(crate) port: u16,
}

impl HostPort {
    /// A host and a port.
    pub(crate) fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One thing the client forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remote {
    /// Listen on `listen` here; each connection goes to `target`, dialled by
    /// the server.
    Forward {
        /// Where the client listens.
        listen: HostPort,
        /// What the server connects to.
        target: HostPort,
    },
    /// Listen on `listen` on the server; each connection goes to `target`,
    /// dialled by the client. Needs the server's `--reverse`.
    Reverse {
        /// Where the server listens.
        listen: HostPort,
        /// What the client connects to.
        target: HostPort,
    },
    /// A SOCKS5 proxy on `listen` here; each CONNECT is dialled by the
    /// server. Needs the server's `--socks`.
    Socks {
        /// Where the client listens.
        listen: HostPort,
    },
    /// stdin and stdout as one connection to `target`.
    Stdio {
        /// What the server connects to.
        target: HostPort,
    },
}

/// Why a REMOTE does not parse. Each message quotes the argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RemoteError {
    /// The argument has none of the accepted shapes.
    #[error(
        "{0:?}: expected [LOCAL_HOST:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT, \
         R:[REMOTE_HOST:]REMOTE_PORT:LOCAL_HOST:LOCAL_PORT, [LOCAL_HOST:]LOCAL_PORT:socks, \
         socks or stdio:REMOTE_HOST:REMOTE_PORT"
    )]
    Shape(String),
    /// A port that is not a number from 0 to 65535 (1 to 65535 for a target).
    #[error("{input:?}: {port:?} is not a valid port{}", if *.target { " (1-65535)" } else { " (0-65535)" })]
    Port {
        /// The whole argument.
        input: String,
        /// The offending field.
        port: String,
        /// Whether it names a target, where 0 is not allowed.
        target: bool,
    },
    /// An empty host, or one with characters no host has.
    #[error("{input:?}: {host:?} is not a valid host")]
    Host {
        /// The whole argument.
        input: String,
        /// The offending field.
        host: String,
    },
    /// A `[` without its `]`, or text after a `]` before the next `:`.
    #[error("{0:?}: an IPv6 address must be written [ADDRESS] followed by ':'")]
    Brackets(String),
}

impl Remote {
    /// Parses one REMOTE argument (see the module documentation).
    pub(crate) fn parse(input: &str) -> Result<Self, RemoteError> {
        let shape = || RemoteError::Shape(input.to_owned());
        if let Some(rest) = input.strip_prefix("R:") {
            let fields = split_fields(input, rest)?;
            let (listen, target) = match fields.as_slice() {
                [port, host, tport] => (
                    HostPort::new(DEFAULT_LISTEN_HOST, listen_port(input, port)?),
                    target(input, host, tport)?,
                ),
                [lhost, port, host, tport] => (
                    HostPort::new(host_field(input, lhost)?, listen_port(input, port)?),
                    target(input, host, tport)?,
                ),
                _ => return Err(shape()),
            };
            return Ok(Self::Reverse { listen, target });
        }
        if let Some(rest) = input.strip_prefix("stdio:") {
            let fields = split_fields(input, rest)?;
            return match fields.as_slice() {
                [host, port] => Ok(Self::Stdio {
                    target: target(input, host, port)?,
                }),
                _ => Err(shape()),
            };
        }
        let fields = split_fields(input, input)?;
        match fields.as_slice() {
            ["socks"] => Ok(Self::Socks {
                listen: HostPort::new(DEFAULT_LISTEN_HOST, DEFAULT_SOCKS_PORT),
            }),
            [port, "socks"] => Ok(Self::Socks {
                listen: HostPort::new(DEFAULT_LISTEN_HOST, listen_port(input, port)?),
            }),
            [lhost, port, "socks"] => Ok(Self::Socks {
                listen: HostPort::new(host_field(input, lhost)?, listen_port(input, port)?),
            }),
            [port, host, tport] => Ok(Self::Forward {
                listen: HostPort::new(DEFAULT_LISTEN_HOST, listen_port(input, port)?),
                target: target(input, host, tport)?,
            }),
            [lhost, port, host, tport] => Ok(Self::Forward {
                listen: HostPort::new(host_field(input, lhost)?, listen_port(input, port)?),
                target: target(input, host, tport)?,
            }),
            _ => Err(shape()),
        }
    }
}

impl std::str::FromStr for Remote {
    type Err = RemoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Forward { listen, target } => write!(f, "{listen} => {target}"),
            Self::Reverse { listen, target } => write!(f, "R:{listen} => {target}"),
            Self::Socks { listen } => write!(f, "{listen} => socks"),
            Self::Stdio { target } => write!(f, "stdio => {target}"),
        }
    }
}

/// Splits `rest` on `:`, keeping a bracketed IPv6 literal whole (without
/// its brackets). `input` is the whole argument, for errors.
fn split_fields<'a>(input: &str, rest: &'a str) -> Result<Vec<&'a str>, RemoteError> {
    let mut fields = Vec::new();
    let mut rest = rest;
    loop {
        if let Some(after) = rest.strip_prefix('[') {
            let (inner, tail) = after
                .split_once(']')
                .ok_or_else(|| RemoteError::Brackets(input.to_owned()))?;
            fields.push(inner);
            if tail.is_empty() {
                return Ok(fields);
            }
            rest = tail
                .strip_prefix(':')
                .ok_or_else(|| RemoteError::Brackets(input.to_owned()))?;
        } else if let Some((field, tail)) = rest.split_once(':') {
            fields.push(field);
            rest = tail;
        } else {
            fields.push(rest);
            return Ok(fields);
        }
    }
}

fn port(input: &str, field: &str, is_target: bool) -> Result<u16, RemoteError> {
    let bad = || RemoteError::Port {
        input: input.to_owned(),
        port: field.to_owned(),
        target: is_target,
    };
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match field.parse::<u16>() {
        Ok(0) if is_target => Err(bad()),
        Ok(port) => Ok(port),
        Err(_) => Err(bad()),
    }
}

fn listen_port(input: &str, field: &str) -> Result<u16, RemoteError> {
    port(input, field, false)
}

fn host_field(input: &str, field: &str) -> Result<String, RemoteError> {
    let valid = !field.is_empty()
        && field.len() <= 255
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'));
    if valid {
        Ok(field.to_owned())
    } else {
        Err(RemoteError::Host {
            input: input.to_owned(),
            host: field.to_owned(),
        })
    }
}

fn target(input: &str, host: &str, port_field: &str) -> Result<HostPort, RemoteError> {
    Ok(HostPort::new(
        host_field(input, host)?,
        port(input, port_field, true)?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hp(host: &str, port: u16) -> HostPort {
        HostPort::new(host, port)
    }

    #[test]
    fn forward_with_and_without_local_host() {
        assert_eq!(
            Remote::parse("8080:example.com:80").unwrap(),
            Remote::Forward {
                listen: hp("127.0.0.1", 8080),
                target: hp("example.com", 80)
            }
        );
        assert_eq!(
            Remote::parse("0.0.0.0:0:10.0.0.1:22").unwrap(),
            Remote::Forward {
                listen: hp("0.0.0.0", 0),
                target: hp("10.0.0.1", 22)
            }
        );
    }

    #[test]
    fn ipv6_literals_in_brackets() {
        assert_eq!(
            Remote::parse("[::1]:8080:[2001:db8::1]:443").unwrap(),
            Remote::Forward {
                listen: hp("::1", 8080),
                target: hp("2001:db8::1", 443)
            }
        );
        assert_eq!(hp("::1", 80).to_string(), "[::1]:80");
        assert!(matches!(
            Remote::parse("[::1:8080:a:80"),
            Err(RemoteError::Brackets(_))
        ));
        assert!(matches!(
            Remote::parse("[::1]x:8080:a:80"),
            Err(RemoteError::Brackets(_))
        ));
    }

    #[test]
    fn reverse() {
        assert_eq!(
            Remote::parse("R:2222:localhost:22").unwrap(),
            Remote::Reverse {
                listen: hp("127.0.0.1", 2222),
                target: hp("localhost", 22)
            }
        );
        assert_eq!(
            Remote::parse("R:0.0.0.0:2222:localhost:22").unwrap(),
            Remote::Reverse {
                listen: hp("0.0.0.0", 2222),
                target: hp("localhost", 22)
            }
        );
        assert!(matches!(
            Remote::parse("R:2222"),
            Err(RemoteError::Shape(_))
        ));
    }

    #[test]
    fn socks_forms() {
        let socks = |host: &str, port| Remote::Socks {
            listen: hp(host, port),
        };
        assert_eq!(Remote::parse("socks").unwrap(), socks("127.0.0.1", 1080));
        assert_eq!(
            Remote::parse("5000:socks").unwrap(),
            socks("127.0.0.1", 5000)
        );
        assert_eq!(
            Remote::parse("0.0.0.0:5000:socks").unwrap(),
            socks("0.0.0.0", 5000)
        );
    }

    #[test]
    fn stdio() {
        assert_eq!(
            Remote::parse("stdio:localhost:22").unwrap(),
            Remote::Stdio {
                target: hp("localhost", 22)
            }
        );
        assert!(matches!(
            Remote::parse("stdio:22"),
            Err(RemoteError::Shape(_))
        ));
    }

    #[test]
    fn bad_input_gets_a_clear_error() {
        let err = Remote::parse("8080").unwrap_err();
        assert!(
            err.to_string().contains("expected [LOCAL_HOST:]LOCAL_PORT"),
            "{err}"
        );
        let err = Remote::parse("80x:host:80").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""80x:host:80": "80x" is not a valid port (0-65535)"#
        );
        let err = Remote::parse("8080:host:0").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""8080:host:0": "0" is not a valid port (1-65535)"#
        );
        assert!(matches!(
            Remote::parse("8080:host:65536"),
            Err(RemoteError::Port { .. })
        ));
        assert!(matches!(
            Remote::parse("8080:host:+80"),
            Err(RemoteError::Port { .. })
        ));
        assert!(matches!(
            Remote::parse("8080::80"),
            Err(RemoteError::Host { .. })
        ));
        assert!(matches!(
            Remote::parse("8080:ho st:80"),
            Err(RemoteError::Host { .. })
        ));
        assert!(matches!(Remote::parse(""), Err(RemoteError::Shape(_))));
        assert!(matches!(
            Remote::parse("a:b:c:d:e"),
            Err(RemoteError::Shape(_))
        ));
    }
}
