//! Credentials: `--auth USER:PASS`, sent by the client as HTTP Basic
//! authorization and checked by the server before it accepts the exchange;
//! and the server's `--authfile`, whose users each get a [`Grant`] of the
//! targets they may reach.
//!
//! The server compares the whole `Authorization` value with the one it
//! expects in constant time, so it never decodes what a client sends.

use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue};

use crate::remote::HostPort;

/// A user and a password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses `USER:PASS` (the password may contain `:`; the user may not
    /// be empty).
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        match input.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Self {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err("expected USER:PASS with a non-empty user".to_owned()),
        }
    }

    /// The `Authorization` header value: `Basic base64(user:password)`.
    pub(crate) fn header_value(&self) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
        let plain = format!("{}:{}", self.user, self.password);
        let mut value = HeaderValue::from_str(&format!("Basic {}", base64(plain.as_bytes())))?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// The targets one user may reach: any, or those matching a pattern.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grant(Arc<[TargetPattern]>);

/// `HOST:PORT` where either may be `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetPattern {
    /// `None` for `*`.
    host: Option<String>,
    /// `None` for `*`.
    port: Option<u16>,
}

impl TargetPattern {
    fn parse(input: &str) -> Result<Self, String> {
        let (host, port) = input
            .rsplit_once(':')
            .ok_or_else(|| format!("{input:?}: expected HOST:PORT (either may be *)"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = (host != "*").then(|| host.to_ascii_lowercase());
        let port = match port {
            "*" => None,
            port => Some(
                port.parse()
                    .map_err(|_| format!("{input:?}: {port:?} is not a port or *"))?,
            ),
        };
        Ok(Self { host, port })
    }

    fn matches(&self, target: &HostPort) -> bool {
        self.host
            .as_ref()
            .is_none_or(|host| host.eq_ignore_ascii_case(&target.host))
            && self.port.is_none_or(|port| port == target.port)
    }
}

impl Grant {
    /// Whether the user may reach `target`.
    pub(crate) fn allows(&self, target: &HostPort) -> bool {
        self.0.is_empty() || self.0.iter().any(|pattern| pattern.matches(target))
    }
}

/// One accepted set of credentials and what it grants.
#[derive(Debug, Clone)]
struct User {
    /// The `Authorization` value.
    expected: HeaderValue,
    grant: Grant,
}

/// What the server requires: nothing, or one of these users' credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    /// Empty means no auth.
    users: Vec<User>,
}

impl Auth {
    /// Requires `credentials`, if any, granting every target.
    pub(crate) fn new(credentials: Option<&Credentials>) -> Result<Self, String> {
        let users = credentials
            .map(|c| {
                Ok::<_, String>(User {
                    expected: header_value(c)?,
                    grant: Grant::default(),
                })
            })
            .transpose()?
            .into_iter()
            .collect();
        Ok(Self { users })
    }

    /// Parses an authfile: one user per line, `USER:PASS [HOST:PORT]...`,
    /// where HOST or PORT may be `*`; a user with no pattern may reach any
    /// target. Blank lines and lines starting with `#` are skipped.
    pub(crate) fn from_authfile(text: &str) -> Result<Self, String> {
        let mut users = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |e: String| format!("line {}: {e}", number.saturating_add(1));
            let mut fields = line.split_whitespace();
            let credentials = Credentials::parse(fields.next().unwrap_or_default()).map_err(at)?;
            let patterns = fields
                .map(TargetPattern::parse)
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            users.push(User {
                expected: header_value(&credentials).map_err(at)?,
                grant: Grant(patterns.into()),
            });
        }
        if users.is_empty() {
            return Err("no user in the authfile".to_owned());
        }
        Ok(Self { users })
    }

    /// What `headers` grant: every target without auth, the matching
    /// user's targets, or `None` when no credentials match.
    pub(crate) fn permits(&self, headers: &HeaderMap) -> Option<Grant> {
        if self.users.is_empty() {
            return Some(Grant::default());
        }
        let given = headers.get(header::AUTHORIZATION)?;
        // Compare with every user, so timing does not tell which matched.
        self.users.iter().fold(None, |found, user| {
            let matches = constant_time_eq(user.expected.as_bytes(), given.as_bytes());
            if matches && found.is_none() {
                Some(user.grant.clone())
            } else {
                found
            }
        })
    }
}

fn header_value(credentials: &Credentials) -> Result<HeaderValue, String> {
    credentials
        .header_value()
        .map_err(|e| format!("credentials cannot go in a header: {e}"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Standard base64 with padding (RFC 4648 §4).
// Shifts of 24-bit groups built from three bytes: nothing overflows.
#[allow(clippy::arithmetic_side_effects)]
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbol = |index: u32| {
        ALPHABET
            .get((index & 63) as usize)
            .map_or('=', |&b| char::from(b))
    };
    let mut out = String::with_capacity(input.len().div_ceil(3).saturating_mul(4));
    for chunk in input.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(symbol(n >> 18));
        out.push(symbol(n >> 12));
        out.push(if chunk.len() > 1 { symbol(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { symbol(n) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn parse_credentials() {
        let c = Credentials::parse("user:pa:ss").unwrap();
        assert_eq!(c.header_value().unwrap(), "Basic dXNlcjpwYTpzcw==");
        assert!(Credentials::parse("nopassword").is_err());
        assert!(Credentials::parse(":pass").is_err());
        assert!(!format!("{c:?}").contains("pa:ss"));
    }

    #[test]
    fn permits_only_the_right_credentials() {
        let right = Credentials::parse("u:p").unwrap();
        let auth = Auth::new(Some(&right)).unwrap();
        let mut headers = HeaderMap::new();
        assert!(auth.permits(&headers).is_none());
        headers.insert(
            header::AUTHORIZATION,
            Credentials::parse("u:q").unwrap().header_value().unwrap(),
        );
        assert!(auth.permits(&headers).is_none());
        headers.insert(header::AUTHORIZATION, right.header_value().unwrap());
        assert!(auth.permits(&headers).is_some());
        assert!(Auth::new(None)
            .unwrap()
            .permits(&HeaderMap::new())
            .is_some());
    }

    #[test]
    fn authfile_grants_targets_per_user() {
        let auth =
            Auth::from_authfile("# users\n\nadmin:root\nweb:pw *:443 db.internal:5432 [::1]:*\n")
                .unwrap();
        let grant_of = |user: &str| {
            let mut headers = HeaderMap::new();
            let value = Credentials::parse(user).unwrap().header_value().unwrap();
            headers.insert(header::AUTHORIZATION, value);
            auth.permits(&headers)
        };
        let admin = grant_of("admin:root").unwrap();
        assert!(admin.allows(&HostPort::new("anything", 1)));
        let web = grant_of("web:pw").unwrap();
        assert!(web.allows(&HostPort::new("example.com", 443)));
        assert!(web.allows(&HostPort::new("DB.internal", 5432)));
        assert!(web.allows(&HostPort::new("::1", 22)));
        assert!(!web.allows(&HostPort::new("db.internal", 22)));
        assert!(!web.allows(&HostPort::new("example.com", 80)));
        assert!(grant_of("web:wrong").is_none());
    }

    #[test]
    fn authfile_errors_name_the_line() {
        let err = Auth::from_authfile("a:b\nnopass\n").unwrap_err();
        assert!(err.starts_with("line 2: "), "{err}");
        let err = Auth::from_authfile("a:b host:http\n").unwrap_err();
        assert!(
            err.contains("line 1: ") && err.contains("not a port"),
            "{err}"
        );
        assert!(Auth::from_authfile("# nobody\n").is_err());
    }
}
