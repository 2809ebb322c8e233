//! The client's SOCKS5 listener (RFC 1928): the no-authentication method
//! and the CONNECT command, to an IPv4, IPv6 or domain-name target. The
//! target travels in the stream header and is dialled by the server (which
//! needs `--socks`); the server's answer becomes the SOCKS reply.
//!
//! Reading is bounded: at most 255 method bytes and a 255-byte domain name.

use std::{
    io,
    net::{Ipv4Addr, Ipv6Addr},
};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{header::Status, remote::HostPort};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
const CONNECT: u8 = 1;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// SOCKS5 reply codes (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Succeeded.
    Succeeded = 0,
    /// General SOCKS server failure (the tunnel is down, say).
    GeneralFailure = 1,
    /// Connection not allowed by ruleset (the server lacks `--socks`).
    NotAllowed = 2,
    /// Host unreachable.
    HostUnreachable = 4,
    /// Connection refused.
    ConnectionRefused = 5,
    /// Command not supported (anything but CONNECT).
    CommandNotSupported = 7,
    /// Address type not supported.
    AddressTypeNotSupported = 8,
}

impl From<Status> for Reply {
    fn from(status: Status) -> Self {
        match status {
            Status::Ok => Self::Succeeded,
            Status::Refused => Self::ConnectionRefused,
            Status::Denied => Self::NotAllowed,
            Status::Unreachable => Self::HostUnreachable,
            Status::BadRequest => Self::GeneralFailure,
        }
    }
}

/// Why a SOCKS handshake failed; the reply, if any, has been sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocksError {
    /// Reading or writing the client failed.
    #[error("SOCKS client: {0}")]
    Io(#[from] io::Error),
    /// Not SOCKS version 5.
    #[error("not a SOCKS5 client (version {0})")]
    Version(u8),
    /// The client offered no method but "no authentication".
    #[error("the SOCKS client offers no method without authentication")]
    NoMethod,
    /// A command other than CONNECT.
    #[error("SOCKS command {0} is not supported (only CONNECT)")]
    Command(u8),
    /// An unknown address type, or a domain name that is empty or not UTF-8.
    #[error("unsupported SOCKS address")]
    Address,
}

/// Runs the server side of the handshake up to the CONNECT request and
/// returns its target. The caller answers with [`reply`].
pub(crate) async fn accept<S>(client: &mut S) -> Result<HostPort, SocksError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let version = client.read_u8().await?;
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let count = usize::from(client.read_u8().await?);
    let mut methods = [0u8; 255];
    let methods = methods.get_mut(..count).ok_or(SocksError::NoMethod)?;
    client.read_exact(methods).await?;
    if !methods.contains(&NO_AUTH) {
        client.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await?;
        return Err(SocksError::NoMethod);
    }
    client.write_all(&[VERSION, NO_AUTH]).await?;
    let mut head = [0u8; 4];
    client.read_exact(&mut head).await?;
    let [version, command, _reserved, atyp] = head;
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let host = match atyp {
        ATYP_IPV4 => {
            let mut octets = [0u8; 4];
            client.read_exact(&mut octets).await?;
            Ipv4Addr::from(octets).to_string()
        }
        ATYP_IPV6 => {
            let mut octets = [0u8; 16];
            client.read_exact(&mut octets).await?;
            Ipv6Addr::from(octets).to_string()
        }
        ATYP_DOMAIN => {
            let len = usize::from(client.read_u8().await?);
            let mut name = vec![0u8; len];
            client.read_exact(&mut name).await?;
            match String::from_utf8(name) {
                Ok(name) if !name.is_empty() => name,
                _ => {
                    reply(client, Reply::AddressTypeNotSupported).await?;
                    return Err(SocksError::Address);
                }
            }
        }
        _ => {
            reply(client, Reply::AddressTypeNotSupported).await?;
            return Err(SocksError::Address);
        }
    };
    let port = client.read_u16().await?;
    if command != CONNECT {
        reply(client, Reply::CommandNotSupported).await?;
        return Err(SocksError::Command(command));
    }
    Ok(HostPort::new(host, port))
}

/// Sends the reply to a CONNECT, with an unspecified bound address (the
/// connection leaves from the server, whose address the client has no use
/// for).
pub(crate) async fn reply<S>(client: &mut S, reply: Reply) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    client
        .write_all(&[VERSION, reply as u8, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0])
        .await?;
    client.flush().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Runs `accept` against a scripted client; returns the target and what
    /// was answered.
    async fn run(input: &[u8]) -> (Result<HostPort, SocksError>, Vec<u8>) {
        let (mut ours, mut theirs) = tokio::io::duplex(1024);
        theirs.write_all(input).await.unwrap();
        theirs.shutdown().await.unwrap();
        let result = accept(&mut ours).await;
        drop(ours);
        let mut answered = Vec::new();
        theirs.read_to_end(&mut answered).await.unwrap();
        (result, answered)
    }

    #[tokio::test]
    async fn connect_ipv4_ipv6_and_domain() {
        let (target, answered) = run(&[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80]).await;
        assert_eq!(target.unwrap(), HostPort::new("10.0.0.1", 80));
        assert_eq!(answered, [5, 0]);

        let mut v6 = vec![5, 2, 2, 0, 5, 1, 0, 4];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(run(&v6).await.0.unwrap(), HostPort::new("::1", 443));

        let mut name = vec![5, 1, 0, 5, 1, 0, 3, 9];
        name.extend_from_slice(b"localhost");
        name.extend_from_slice(&8080u16.to_be_bytes());
        assert_eq!(
            run(&name).await.0.unwrap(),
            HostPort::new("localhost", 8080)
        );
    }

    #[tokio::test]
    async fn refusals_are_answered() {
        // Only username/password offered.
        let (result, answered) = run(&[5, 1, 2]).await;
        assert!(matches!(result, Err(SocksError::NoMethod)));
        assert_eq!(answered, [5, 0xff]);
        // BIND.
        let (result, answered) = run(&[5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]).await;
        assert!(matches!(result, Err(SocksError::Command(2))));
        assert_eq!(answered.get(2..4), Some(&[5, 7][..]));
        // Unknown address type.
        let (result, _) = run(&[5, 1, 0, 5, 1, 0, 9]).await;
        assert!(matches!(result, Err(SocksError::Address)));
        // SOCKS4.
        let (result, answered) = run(&[4, 1, 0, 80]).await;
        assert!(matches!(result, Err(SocksError::Version(4))));
        assert!(answered.is_empty());
        // Truncated.
        let (result, _) = run(&[5, 1, 0, 5, 1, 0, 3, 9, b'a']).await;
        assert!(matches!(result, Err(SocksError::Io(_))));
    }

    #[test]
    fn statuses_map_to_replies() {
        assert_eq!(Reply::from(Status::Denied), Reply::NotAllowed);
        assert_eq!(Reply::from(Status::Refused), Reply::ConnectionRefused);
    }
}
