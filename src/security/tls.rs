//! TLS material: a self-signed certificate made once into `<data_dir>/tls/`
//! and reused on every start, or PEM files named in the config.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::keyfile::write_private;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// Paths of the self-signed pair, generating it on first use.
pub fn ensure_self_signed(data_dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).map_err(|e| TlsError(format!("cannot create {}: {e}", dir.display())))?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsError(format!("cannot generate a certificate: {e}")))?;
    write_private(&key_path, certified.key_pair.serialize_pem().as_bytes())
        .map_err(|e| TlsError(format!("cannot write {}: {e}", key_path.display())))?;
    std::fs::write(&cert_path, certified.cert.pem())
        .map_err(|e| TlsError(format!("cannot write {}: {e}", cert_path.display())))?;
    Ok((cert_path, key_path))
}

/// A rustls server config from PEM files (HTTP/1.1 and HTTP/2 via ALPN).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError(format!("cannot read certificate {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("bad certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("no certificate in {}", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError(format!("cannot read private key {}: {e}", key.display())))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("certificate and key do not form a usable pair: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
