//! The backup file format (format 1), little-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 16 | magic `FORTFOLIO-BACKUP` |
//! | 4 | format version |
//! | 4 | manifest length *n* |
//! | *n* | the manifest, JSON |
//! | 32 | SHA-256 of everything above |
//! | `payload_bytes` | the payload: a redb database file |
//!
//! The manifest names the payload's length and SHA-256, so a cut, a flipped
//! byte or trailing bytes anywhere are found before the payload is opened.
//! A file that starts with redb's own magic is a backup written before
//! format 1 (a bare database): format 0, read without a manifest.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

pub const MAGIC: &[u8; 16] = b"FORTFOLIO-BACKUP";
/// The newest format this build writes and reads.
pub const FORMAT: u32 = 1;
/// redb's file magic: a format 0 backup.
const REDB_MAGIC: &[u8; 9] = b"redb\x1a\x0a\xa9\x0d\x0a";
const FIXED: usize = MAGIC.len() + 8;
/// A manifest is a few hundred bytes; a longer length field is damage.
const MAX_MANIFEST: usize = 1 << 20;

/// What a backup holds, written before the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The fortfolio version that wrote it.
    pub fortfolio_version: String,
    /// Absent in format 0.
    pub created_at: Option<DateTime<Utc>>,
    /// Records per table.
    pub tables: BTreeMap<String, u64>,
    pub records: u64,
    /// Files carried beside the data (the server keys).
    pub files: Vec<String>,
    pub payload_bytes: u64,
    /// Hex; absent in format 0.
    pub payload_sha256: Option<String>,
}

impl Manifest {
    pub fn new(tables: BTreeMap<String, u64>, files: Vec<String>, payload: &[u8]) -> Self {
        Self {
            format: FORMAT,
            fortfolio_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: Some(Utc::now()),
            records: tables.values().sum(),
            tables,
            files,
            payload_bytes: payload.len() as u64,
            payload_sha256: Some(hex::encode(Sha256::digest(payload))),
        }
    }
}

/// The header (magic, version, manifest, checksum) that goes before the
/// payload.
pub fn header(manifest: &Manifest) -> Result<Vec<u8>, BackupError> {
    let json = serde_json::to_vec(manifest).map_err(|e| BackupError::Io(e.to_string()))?;
    let mut out = Vec::with_capacity(FIXED + json.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Splits a plain (decrypted) backup into its manifest and payload,
/// checking every length and checksum. The payload is not opened here.
pub fn decode(bytes: &[u8]) -> Result<(Manifest, &[u8]), BackupError> {
    if bytes.is_empty() {
        return Err(BackupError::Empty);
    }
    if bytes.starts_with(REDB_MAGIC) {
        return Ok((legacy(bytes.len()), bytes));
    }
    if !bytes.starts_with(MAGIC) {
        if MAGIC.starts_with(bytes) {
            return Err(BackupError::Truncated(format!(
                "it ends inside the header ({} bytes)",
                bytes.len()
            )));
        }
        return Err(BackupError::NotABackup);
    }
    if bytes.len() < FIXED {
        return Err(BackupError::Truncated(format!(
            "it ends inside the header ({} bytes)",
            bytes.len()
        )));
    }
    let format = u32_at(bytes, MAGIC.len());
    let manifest_len = u32_at(bytes, MAGIC.len() + 4) as usize;
    if format > FORMAT {
        return Err(BackupError::Newer {
            format,
            writer: writer_of(&bytes[FIXED..], manifest_len),
        });
    }
    if format == 0 || manifest_len > MAX_MANIFEST {
        return Err(BackupError::Damaged("its header is damaged".into()));
    }
    let body = FIXED + manifest_len;
    if bytes.len() < body + 32 {
        return Err(BackupError::Truncated(format!(
            "it ends inside the header ({} of at least {} bytes)",
            bytes.len(),
            body + 32
        )));
    }
    let sum = Sha256::digest(&bytes[..body]);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&sum[..], &bytes[body..body + 32])) {
        return Err(BackupError::Damaged(
            "its header does not match the header's checksum".into(),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&bytes[FIXED..body])
        .map_err(|e| BackupError::Damaged(format!("its manifest cannot be read: {e}")))?;
    if manifest.format != format {
        return Err(BackupError::Damaged(
            "its manifest names another format than its header".into(),
        ));
    }
    let payload = &bytes[body + 32..];
    let want = manifest.payload_bytes;
    if (payload.len() as u64) < want {
        return Err(BackupError::Truncated(format!(
            "the payload has {} of {want} bytes",
            payload.len()
        )));
    }
    if payload.len() as u64 > want {
        return Err(BackupError::Damaged(format!(
            "{} unexpected bytes follow the payload",
            payload.len() as u64 - want
        )));
    }
    let expected = manifest.payload_sha256.as_deref().unwrap_or("");
    if hex::encode(Sha256::digest(payload)) != expected {
        return Err(BackupError::Damaged(
            "the payload's SHA-256 differs from the manifest's (a byte was changed)".into(),
        ));
    }
    Ok((manifest, payload))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Who wrote a newer-format file, if its manifest still reads as JSON.
fn writer_of(rest: &[u8], len: usize) -> Option<String> {
    let json = rest.get(..len)?;
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v.get("fortfolio_version")?
        .as_str()
        .map(|s| s.chars().take(32).collect())
}

/// A format 0 backup: a bare database, nothing to check it against.
fn legacy(len: usize) -> Manifest {
    Manifest {
        format: 0,
        fortfolio_version: "0.1.0 or earlier".into(),
        created_at: None,
        tables: BTreeMap::new(),
        records: 0,
        files: Vec::new(),
        payload_bytes: len as u64,
        payload_sha256: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let payload = b"redb\x1a\x0a\xa9\x0d\x0a and then the pages".to_vec();
        let tables = BTreeMap::from([("users".to_string(), 2u64)]);
        let m = Manifest::new(tables, vec!["jwt.key".into()], &payload);
        let mut file = header(&m).unwrap();
        file.extend_from_slice(&payload);
        file
    }

    #[test]
    fn a_written_header_reads_back() {
        let file = sample();
        let (m, payload) = decode(&file).unwrap();
        assert_eq!(m.format, FORMAT);
        assert_eq!(m.records, 2);
        assert_eq!(m.files, ["jwt.key"]);
        assert!(payload.starts_with(REDB_MAGIC));
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused() {
        let file = sample();
        for len in 0..file.len() {
            let e = decode(&file[..len]).unwrap_err();
            assert!(
                matches!(e, BackupError::Truncated(_) | BackupError::Empty),
                "cut at {len}: {e}"
            );
        }
        for at in 0..file.len() {
            let mut bad = file.clone();
            bad[at] ^= 0x01;
            assert!(decode(&bad).is_err(), "flipped byte {at} was accepted");
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(decode(&longer), Err(BackupError::Damaged(_))));
    }

    #[test]
    fn a_newer_format_names_its_writer() {
        let mut file = sample();
        file[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&7u32.to_le_bytes());
        let e = decode(&file).unwrap_err();
        assert!(matches!(&e, BackupError::Newer { format: 7, writer: Some(v) } if v == env!("CARGO_PKG_VERSION")));
        assert!(e.to_string().contains("format 7"), "{e}");
    }

    #[test]
    fn foreign_bytes_are_not_a_backup() {
        assert!(matches!(decode(b"PK\x03\x04 a zip file"), Err(BackupError::NotABackup)));
        assert!(matches!(decode(b""), Err(BackupError::Empty)));
        let (m, _) = decode(b"redb\x1a\x0a\xa9\x0d\x0a...").unwrap();
        assert_eq!(m.format, 0);
    }
}
