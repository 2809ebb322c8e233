//! Credentials: `--auth USER:PASS`, sent by the client as HTTP Basic
//! authorization and checked by the server before it accepts the exchange.
//!
//! The server compares the whole `Authorization` value with the one it
//! expects in constant time, so it never decodes what a client sends.

use http::{header, HeaderMap, HeaderValue};

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

/// What the server requires: nothing, or one of these credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    /// The accepted `Authorization` values; empty means no auth.
    accepted: Vec<HeaderValue>,
}

impl Auth {
    /// Requires `credentials`, if any.
    pub(crate) fn new(credentials: Option<&Credentials>) -> Result<Self, String> {
        let accepted = credentials
            .map(Credentials::header_value)
            .transpose()
            .map_err(|e| format!("credentials cannot go in a header: {e}"))?
            .into_iter()
            .collect();
        Ok(Self { accepted })
    }

    /// Whether `headers` carry accepted credentials (always, without auth).
    pub(crate) fn permits(&self, headers: &HeaderMap) -> bool {
        if self.accepted.is_empty() {
            return true;
        }
        let Some(given) = headers.get(header::AUTHORIZATION) else {
            return false;
        };
        // Check them all, so timing does not tell which user matched.
        self.accepted.iter().fold(false, |ok, expected| {
            constant_time_eq(expected.as_bytes(), given.as_bytes()) | ok
        })
    }
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
        assert!(!auth.permits(&headers));
        headers.insert(
            header::AUTHORIZATION,
            Credentials::parse("u:q").unwrap().header_value().unwrap(),
        );
        assert!(!auth.permits(&headers));
        headers.insert(header::AUTHORIZATION, right.header_value().unwrap());
        assert!(auth.permits(&headers));
        assert!(Auth::new(None).unwrap().permits(&HeaderMap::new()));
    }
}
