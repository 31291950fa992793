//! TLS to PostgreSQL through rustls, with libpq's `sslmode` meanings:
//! `disable` (plain), `prefer` (the default: encrypt when the server offers
//! it), `require` (encrypt or fail) — these two, as in libpq, do not check
//! the server's certificate — and `verify-ca` / `verify-full`, which do:
//! against the web PKI roots, or the CA in `sslrootcert=<file>`.
//! tokio-postgres knows only the first three, so the verifying modes and
//! `sslrootcert` are taken out of the URL here and become `require` plus a
//! verifying connector.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::store::{StoreError, StoreResult};

/// Whether and against what the server's certificate is checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verification {
    pub verify: bool,
    pub root_cert: Option<PathBuf>,
}

/// Splits the verification settings off a connection string (URL or
/// `key=value` form) and parses the rest.
pub(super) fn parse(url: &str) -> StoreResult<(tokio_postgres::Config, Verification)> {
    let mut verification = Verification::default();
    let mut keep = |pair: &str| -> bool {
        match pair.split_once('=') {
            Some(("sslmode", "verify-ca" | "verify-full")) => {
                verification.verify = true;
                false
            }
            Some(("sslrootcert", path)) => {
                verification.root_cert = Some(PathBuf::from(path));
                false
            }
            _ => true,
        }
    };
    let cleaned = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let rest: Vec<&str> = query.split('&').filter(|p| keep(p)).collect();
                if rest.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", rest.join("&"))
                }
            }
            None => url.to_string(),
        }
    } else {
        url.split_whitespace().filter(|p| keep(p)).collect::<Vec<_>>().join(" ")
    };
    let mut config: tokio_postgres::Config = cleaned
        .parse()
        .map_err(|e: tokio_postgres::Error| StoreError::backend(format!("storage.postgres_url: {e}")))?;
    if verification.verify {
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }
    Ok((config, verification))
}

pub(super) fn connector(v: &Verification) -> StoreResult<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::backend(format!("postgres TLS: {e}")))?;
    let config = if v.verify {
        let mut roots = rustls::RootCertStore::empty();
        match &v.root_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| StoreError::backend(format!("sslrootcert {}: {e}", path.display())))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(StoreError::backend(format!(
                        "sslrootcert {}: no usable certificate",
                        path.display()
                    )));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `prefer`/`require`: the channel is encrypted and its handshake signed by
/// the certificate's key, but who holds the certificate is not checked
/// (libpq's meaning of these modes).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn verifying_modes_and_root_certs_are_taken_out_of_the_url() {
        let (c, v) =
            parse("postgres://app@db:5432/f?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x").unwrap();
        assert_eq!(
            v,
            Verification {
                verify: true,
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert_eq!(c.get_application_name(), Some("x"));
        let (c, v) = parse("host=db user=app sslmode=require").unwrap();
        assert_eq!(v, Verification::default());
        assert_eq!(c.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        let (_, v) = parse("postgres://app@db/f").unwrap();
        assert!(!v.verify);
    }
}
