//! Backup and restore: capabilities of the embedded backend only.

use chrono::Utc;
use redb::{ReadableTable, ReadableTableMetadata};

use super::*;

/// Backup and restore: capabilities of the embedded backend only (a
/// PostgreSQL deployment uses the database's own tools).
impl RedbStore {
    /// Writes a consistent snapshot of everything to a new file at `path`
    /// (mode 0600), with `extras` (e.g. key files) stored beside the data.
    /// Returns how many records were copied.
    pub async fn backup(&self, path: &Path, extras: Vec<(String, Vec<u8>)>) -> StoreResult<u64> {
        let db = self.db.clone();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || snapshot(&db, &path, extras))
            .await
            .map_err(backend)?
    }
}

/// Key files and other non-table data carried by a backup.
const BACKUP_EXTRAS: Table = TableDefinition::new("backup_extras");

/// Copies every table from one read transaction (a consistent snapshot,
/// taken while writers go on) into a new database file.
fn snapshot(db: &Database, path: &Path, extras: Vec<(String, Vec<u8>)>) -> StoreResult<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    // Created here first so the file is 0600 before any data reaches it.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::backend(format!("cannot create {}: {e}", path.display())))?;
    let out = Database::create(path).map_err(backend)?;
    let read = db.begin_read().map_err(backend)?;
    let write = out.begin_write().map_err(backend)?;
    let mut rows = 0u64;
    for def in ALL_TABLES {
        let src = read.open_table(def).map_err(backend)?;
        let mut dst = write.open_table(def).map_err(backend)?;
        for row in src.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            dst.insert(k.value(), v.value()).map_err(backend)?;
            rows += 1;
        }
    }
    {
        let mut t = write.open_table(BACKUP_EXTRAS).map_err(backend)?;
        for (name, bytes) in &extras {
            t.insert(name.as_str(), bytes.as_slice()).map_err(backend)?;
        }
    }
    write.commit().map_err(backend)?;
    Ok(rows)
}

/// A backup checked and copied next to the database, ready to replace it.
pub struct StagedRestore {
    data_dir: std::path::PathBuf,
    staged: std::path::PathBuf,
    /// Records in the backup.
    pub rows: u64,
    /// Files carried beside the data (key files), by plain file name; the
    /// caller writes them back before [`StagedRestore::commit`].
    pub extras: Vec<(String, Vec<u8>)>,
}

impl RedbStore {
    /// First half of a restore (the server must be stopped): checks that
    /// `backup` is a fortfolio snapshot, copies it beside the database, and
    /// refuses while a server holds the database.
    pub fn stage_restore(data_dir: &Path, backup: &Path) -> StoreResult<StagedRestore> {
        std::fs::create_dir_all(data_dir).map_err(backend)?;
        let staged = data_dir.join(format!("{FILE_NAME}.restoring"));
        let _ = std::fs::remove_file(&staged);
        std::fs::copy(backup, &staged)
            .map_err(|e| StoreError::backend(format!("cannot read {}: {e}", backup.display())))?;
        let not_a_backup = |e: &dyn std::fmt::Display| {
            StoreError::backend(format!("{} is not a fortfolio backup: {e}", backup.display()))
        };
        let (rows, extras) = {
            let db = Database::open(&staged).map_err(|e| not_a_backup(&e))?;
            let read = db.begin_read().map_err(backend)?;
            let mut rows = 0u64;
            for def in ALL_TABLES {
                let t = read.open_table(def).map_err(|e| not_a_backup(&e))?;
                rows += t.len().map_err(backend)?;
            }
            let mut extras = Vec::new();
            if let Ok(t) = read.open_table(BACKUP_EXTRAS) {
                for row in t.iter().map_err(backend)? {
                    let (k, v) = row.map_err(backend)?;
                    let name = k.value().to_string();
                    // Only plain file names, never paths, from a backup file.
                    if !name.contains('/') && !name.starts_with('.') {
                        extras.push((name, v.value().to_vec()));
                    }
                }
            }
            (rows, extras)
        };
        if data_dir.join(FILE_NAME).exists() {
            // Refuses while a server holds the database.
            drop(RedbStore::open(data_dir)?);
        }
        Ok(StagedRestore {
            data_dir: data_dir.to_path_buf(),
            staged,
            rows,
            extras,
        })
    }
}

impl StagedRestore {
    /// Second half: atomically renames the snapshot over the database; the
    /// previous database is kept as `fortfolio.redb.before-restore-<time>`.
    pub fn commit(self) -> StoreResult<u64> {
        let current = self.data_dir.join(FILE_NAME);
        if current.exists() {
            let keep = self.data_dir.join(format!(
                "{FILE_NAME}.before-restore-{}",
                Utc::now().format("%Y%m%dT%H%M%S")
            ));
            std::fs::rename(&current, &keep).map_err(backend)?;
        }
        std::fs::rename(&self.staged, &current).map_err(backend)?;
        Ok(self.rows)
    }
}
