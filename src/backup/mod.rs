//! Backups you can check: a self-describing file (`format`), optionally
//! age-encrypted (`seal`), written on demand or on a schedule (`schedule`),
//! and read back only after every length, checksum and record count holds.
//!
//! Reading never trusts the file: the header and payload checksums are
//! checked before the database inside is opened (in memory), and that open
//! runs under `catch_unwind` as a last line, so no input makes a command
//! panic.

pub mod format;
pub mod schedule;
pub mod seal;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::security::events::{EventType, NewEvent};
use crate::store::redb::{contents_of, Contents, RedbStore};
pub use format::Manifest;
pub use seal::{Key, Lock, Seal};

/// Why a backup file cannot be used, as the rest of a line that starts
/// with the file's name.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("it is empty")]
    Empty,
    #[error("it is not a fortfolio backup")]
    NotABackup,
    #[error("it is cut short: {0}")]
    Truncated(String),
    #[error("it is damaged: {0}")]
    Damaged(String),
    #[error(
        "it is backup format {format}{}, newer than this fortfolio ({}) reads (format {}): use a newer fortfolio",
        writer.as_ref().map(|w| format!(" written by fortfolio {w}")).unwrap_or_default(),
        env!("CARGO_PKG_VERSION"),
        format::FORMAT
    )]
    Newer { format: u32, writer: Option<String> },
    /// The file is encrypted and no key was given.
    #[error("it is encrypted {0}")]
    Locked(String),
    #[error("it cannot be decrypted: {0}")]
    WrongKey(String),
    #[error("{0}")]
    Io(String),
}

/// A backup read from a file and checked against its own manifest.
pub struct Checked {
    pub manifest: Manifest,
    pub contents: Contents,
    pub encrypted: bool,
    plain: Vec<u8>,
    payload_at: usize,
}

impl Checked {
    /// The database file inside.
    pub fn payload(&self) -> &[u8] {
        &self.plain[self.payload_at..]
    }

    /// What `backup verify` prints with `--json`.
    pub fn report(&self, file: &Path) -> Report {
        Report {
            file: file.display().to_string(),
            encrypted: self.encrypted,
            manifest: self.manifest.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub encrypted: bool,
    #[serde(flatten)]
    pub manifest: Manifest,
}

/// Reads, decrypts (asking `unseal` for the key if the file is encrypted)
/// and checks a backup file. `quiet` silences the panic hook around the
/// database open (for the command line, where a panic message would be a
/// second, confusing line).
pub fn read(
    path: &Path,
    unseal: impl FnOnce(Lock) -> Result<Key, BackupError>,
    quiet: bool,
) -> Result<Checked, BackupError> {
    let bytes = std::fs::read(path).map_err(|e| BackupError::Io(format!("cannot read it: {e}")))?;
    let encrypted = seal::is_sealed(&bytes);
    let plain = seal::open(bytes, unseal)?;
    let (mut manifest, payload) = format::decode(&plain)?;
    let payload_at = plain.len() - payload.len();
    let contents = guarded(quiet, || contents_of(payload)).map_err(BackupError::Damaged)?;
    if manifest.format == 0 {
        manifest.tables = contents.tables.clone();
        manifest.records = contents.records();
        manifest.files = contents.file_names();
    } else {
        check_counts(&manifest, &contents)?;
    }
    Ok(Checked {
        manifest,
        contents,
        encrypted,
        plain,
        payload_at,
    })
}

/// The database inside must hold what the manifest lists, table by table.
fn check_counts(manifest: &Manifest, contents: &Contents) -> Result<(), BackupError> {
    for (table, want) in &manifest.tables {
        let found = contents.tables.get(table).copied().unwrap_or(0);
        if found != *want {
            return Err(BackupError::Damaged(format!(
                "its database holds {found} records in {table}, its manifest says {want}"
            )));
        }
    }
    if let Some(extra) = contents.tables.keys().find(|t| !manifest.tables.contains_key(*t)) {
        return Err(BackupError::Damaged(format!(
            "its database holds a table its manifest does not list ({extra})"
        )));
    }
    if contents.file_names() != manifest.files {
        return Err(BackupError::Damaged(
            "the key files inside differ from its manifest's list".into(),
        ));
    }
    Ok(())
}

/// Runs `f` so that a panic inside becomes an error (a last line: every
/// input is checked before it gets here).
fn guarded<T>(quiet: bool, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let hook = quiet.then(std::panic::take_hook);
    if quiet {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    if let Some(hook) = hook {
        std::panic::set_hook(hook);
    }
    r.unwrap_or_else(|_| Err("its database is corrupt (reading it failed)".into()))
}

/// The key files a backup carries, from the data dir.
pub const KEY_FILES: [&str; 2] = ["jwt.key", "totp.key"];

/// A backup just written.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub path: PathBuf,
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub encrypted: bool,
}

/// Writes a consistent snapshot of `store` (and the key files in
/// `data_dir`) to a new file at `path`. The serialised database is opened
/// again and its counts compared before a byte is written; a plain file is
/// read back and checked in full after.
pub async fn write(store: &RedbStore, data_dir: &Path, path: &Path, seal: Seal) -> Result<Written, BackupError> {
    let started = Instant::now();
    let mut extras = Vec::new();
    for name in KEY_FILES {
        if let Ok(bytes) = std::fs::read(data_dir.join(name)) {
            extras.push((name.to_string(), bytes));
        }
    }
    let snap = store
        .snapshot_bytes(extras)
        .await
        .map_err(|e| BackupError::Io(format!("cannot take a snapshot: {e}")))?;
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let reread = guarded(false, || contents_of(&snap.bytes)).map_err(BackupError::Damaged)?;
        if reread != snap.contents {
            return Err(BackupError::Damaged(
                "the snapshot does not read back as written".into(),
            ));
        }
        let manifest = Manifest::new(snap.contents.tables.clone(), snap.contents.file_names(), &snap.bytes);
        let header = format::header(&manifest)?;
        let encrypted = !seal.is_plain();
        let bytes = seal::write_file(&path, &[&header, &snap.bytes], &seal)?;
        if !encrypted {
            read(&path, |lock| Err(seal::locked(lock)), false)
                .map_err(|e| BackupError::Io(format!("{} does not read back: {e}", path.display())))?;
        }
        Ok(Written {
            path,
            records: manifest.records,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            encrypted,
        })
    })
    .await
    .map_err(|e| BackupError::Io(e.to_string()))?
}

/// The security event for a backup attempt: `backup_written` (file, bytes,
/// records, seconds, encrypted, by) or `backup_failed` (file, reason, by);
/// `by` is "schedule" or the admin command's user.
pub fn event(path: &Path, by: &str, outcome: &Result<Written, BackupError>) -> NewEvent {
    let file = path.display().to_string();
    match outcome {
        Ok(w) => NewEvent::success(EventType::BackupWritten)
            .detail("file", file)
            .detail("bytes", w.bytes)
            .detail("records", w.records)
            .detail("seconds", (w.seconds * 1000.0).round() / 1000.0)
            .detail("encrypted", w.encrypted)
            .detail("by", by),
        Err(e) => NewEvent::failure(EventType::BackupFailed)
            .detail("file", file)
            .detail("reason", e.to_string())
            .detail("by", by),
    }
}
