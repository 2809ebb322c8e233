//! TLS for both sides, with rustls and its `ring` provider.
//!
//! - The server's certificate comes from `--tls-cert`/`--tls-key` (PEM) or
//!   is generated at start (`--tls-self-signed`); either way the server
//!   prints its [`Fingerprint`], the SHA-256 of the certificate's DER, as
//!   lowercase hex.
//! - The client verifies the server with the Mozilla roots of
//!   `webpki-roots` (the same as `mux_h2`'s `tls` feature) or, with
//!   `--fingerprint`, accepts exactly the certificate whose SHA-256 is the
//!   one given ([`Pinned`]), whatever its names, issuer or dates; the
//!   handshake signatures are checked with the provider's algorithms either
//!   way.
//!
//! ALPN offers `h2` for the HTTP/2 modes and `http/1.1` for the upgrade.

use std::{fmt, io, path::Path, sync::Arc};

use rustls::{
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};

/// The SHA-256 of a certificate's DER, the form `--fingerprint` takes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `cert`.
    pub(crate) fn of(cert: &CertificateDer<'_>) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Self(bytes)
    }

    /// Parses 64 hex digits, in either case, optionally separated by
    /// colons (`AB:CD:...`, as `openssl x509 -fingerprint -sha256` prints).
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        let digits: Vec<u8> = input.bytes().filter(|&b| b != b':').collect();
        let bad = || format!("{input:?}: expected a SHA-256 fingerprint, 64 hex digits");
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            // ASCII hex digits: valid UTF-8, and no sign for from_str_radix.
            let text = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's TLS: a rustls configuration and its certificate's
/// fingerprint.
#[derive(Debug)]
pub(crate) struct ServerTls {
    /// With ALPN `h2` and `http/1.1`.
    pub(crate) config: Arc<ServerConfig>,
    /// Of the first certificate of the chain.
    pub(crate) fingerprint: Fingerprint,
}

impl ServerTls {
    /// From PEM files: a certificate chain (leaf first) and a private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("--tls-cert {}: {e}", cert.display()))?;
        if chain.is_empty() {
            anyhow::bail!("--tls-cert {}: no certificate in the file", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| anyhow::anyhow!("--tls-key {}: {e}", key.display()))?;
        Self::new(chain, key)
    }

    /// A new self-signed certificate for `localhost` and `host` (unless
    /// it is empty or unspecified), with an ECDSA P-256 key.
    pub(crate) fn self_signed(host: &str) -> anyhow::Result<Self> {
        let mut names = vec!["localhost".to_owned()];
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !matches!(host, "" | "0.0.0.0" | "::" | "localhost") {
            names.push(host.to_owned());
        }
        let generated = rcgen::generate_simple_self_signed(names)
            .map_err(|e| anyhow::anyhow!("cannot generate a self-signed certificate: {e}"))?;
        let key = PrivateKeyDer::try_from(generated.key_pair.serialize_der())
            .map_err(|e| anyhow::anyhow!("the generated key: {e}"))?;
        Self::new(vec![generated.cert.der().clone()], key)
    }

    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> anyhow::Result<Self> {
        let fingerprint = chain
            .first()
            .map(Fingerprint::of)
            .ok_or_else(|| anyhow::anyhow!("no certificate"))?;
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| anyhow::anyhow!("the certificate or key is not usable: {e}"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            fingerprint,
        })
    }
}

/// The client's TLS: a rustls configuration with the ALPN of its mode.
#[derive(Debug, Clone)]
pub(crate) struct ClientTls {
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// Pinned to `fingerprint`, or verified against the webpki roots.
    pub(crate) fn new(fingerprint: Option<Fingerprint>, alpn: &[u8]) -> anyhow::Result<Self> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let mut config = match fingerprint {
            Some(fingerprint) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    fingerprint,
                    provider,
                }))
                .with_no_client_auth(),
            None => builder
                .with_root_certificates(RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                })
                .with_no_client_auth(),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Runs the handshake over `io` for the server named `host`.
    pub(crate) async fn handshake<T>(
        &self,
        io: T,
        host: &str,
    ) -> io::Result<tokio_rustls::client::TlsStream<T>>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, io)
            .await
    }
}

/// Whether `e`, from a handshake, is the server's certificate failing
/// verification (a failure that retrying cannot mend).
pub(crate) fn is_certificate_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
}

/// A handshake error as one line for the user: a fingerprint mismatch in
/// its own words (rustls would print its debug form).
pub(crate) fn describe(e: &io::Error) -> String {
    let mismatch = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|e| match e {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<Mismatch>()
            }
            _ => None,
        });
    match mismatch {
        Some(mismatch) => mismatch.to_string(),
        None => e.to_string(),
    }
}

/// The `--fingerprint` verifier: the server's certificate must be the one
/// whose SHA-256 is `fingerprint`.
#[derive(Debug)]
struct Pinned {
    fingerprint: Fingerprint,
    provider: Arc<CryptoProvider>,
}

/// The certificate a [`Pinned`] verifier refused.
#[derive(Debug, thiserror::Error)]
#[error("the server's certificate has SHA-256 fingerprint {got}, not the --fingerprint {expected}")]
struct Mismatch {
    got: Fingerprint,
    expected: Fingerprint,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        if got == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(Mismatch {
                    got,
                    expected: self.fingerprint,
                }))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fingerprints_parse_in_hex_with_or_without_colons() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let fp = Fingerprint::parse(hex).unwrap();
        assert_eq!(fp.to_string(), hex.to_ascii_lowercase());
        let colons: Vec<String> = hex
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(Fingerprint::parse(&colons.join(":")).unwrap(), fp);
        let signed = format!("+f{}", &hex[2..]);
        for bad in [
            "",
            "00",
            &hex[1..],
            &format!("{hex}00"),
            &hex.replace('a', "g"),
            &signed,
        ] {
            assert!(Fingerprint::parse(bad).is_err(), "{bad}");
        }
        // A multi-byte character must not split a pair.
        assert!(Fingerprint::parse(&format!("é{}", &hex[2..])).is_err());
    }

    #[test]
    fn self_signed_prints_the_fingerprint_of_its_certificate() {
        let tls = ServerTls::self_signed("127.0.0.1").unwrap();
        assert_eq!(tls.fingerprint.to_string().len(), 64);
        assert_eq!(
            tls.config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
