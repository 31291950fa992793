//! Backup and restore: capabilities of the embedded backend only (a
//! PostgreSQL deployment uses the database's own tools).
//!
//! A snapshot is the bytes of a redb database holding every table plus the
//! key files; `crate::backup` wraps it in the self-describing file format,
//! checks it, and encrypts it. Nothing here touches a file but the restore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use redb::backends::InMemoryBackend;
use redb::{ReadableTable, ReadableTableMetadata, StorageBackend, TableHandle};

use super::*;

/// Key files and other non-table data carried by a backup.
const BACKUP_EXTRAS: Table = TableDefinition::new("backup_extras");

/// A database serialised to bytes, with what it holds.
pub struct Snapshot {
    /// A complete redb database file.
    pub bytes: Vec<u8>,
    pub contents: Contents,
}

/// What a snapshot holds: records per table and the carried files.
/// `Debug` names the files, never their bytes (they are the server keys).
#[derive(Default, Clone, PartialEq)]
pub struct Contents {
    pub tables: BTreeMap<String, u64>,
    /// Files carried beside the data (key files), by plain file name.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Contents {
    pub fn records(&self) -> u64 {
        self.tables.values().sum()
    }

    pub fn file_names(&self) -> Vec<String> {
        self.files.iter().map(|(n, _)| n.clone()).collect()
    }
}

impl std::fmt::Debug for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contents")
            .field("tables", &self.tables)
            .field("files", &self.file_names())
            .finish()
    }
}

/// Key files may only come back under their own plain names.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.')
}

impl RedbStore {
    /// A consistent snapshot of every table (one read transaction, taken
    /// while writers go on), with `extras` (the key files) beside the data.
    pub async fn snapshot_bytes(&self, extras: Vec<(String, Vec<u8>)>) -> StoreResult<Snapshot> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || snapshot(&db, extras))
            .await
            .map_err(backend)?
    }
}

/// A memory backend the caller can still read once the database is closed.
#[derive(Debug, Clone, Default)]
struct SharedMemory(Arc<InMemoryBackend>);

impl StorageBackend for SharedMemory {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.0.read(offset, len)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
        self.0.sync_data(eventual)
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
}

impl SharedMemory {
    fn bytes(&self) -> std::io::Result<Vec<u8>> {
        let len = usize::try_from(self.0.len()?).map_err(std::io::Error::other)?;
        self.0.read(0, len)
    }
}

fn snapshot(db: &Database, extras: Vec<(String, Vec<u8>)>) -> StoreResult<Snapshot> {
    let memory = SharedMemory::default();
    let out = Database::builder()
        .create_with_backend(memory.clone())
        .map_err(backend)?;
    let read = db.begin_read().map_err(backend)?;
    let write = out.begin_write().map_err(backend)?;
    let mut contents = Contents::default();
    for def in ALL_TABLES {
        let src = read.open_table(def).map_err(backend)?;
        let mut dst = write.open_table(def).map_err(backend)?;
        let mut rows = 0u64;
        for row in src.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            dst.insert(k.value(), v.value()).map_err(backend)?;
            rows += 1;
        }
        contents.tables.insert(def.name().to_string(), rows);
    }
    {
        let mut t = write.open_table(BACKUP_EXTRAS).map_err(backend)?;
        for (name, bytes) in &extras {
            t.insert(name.as_str(), bytes.as_slice()).map_err(backend)?;
        }
    }
    write.commit().map_err(backend)?;
    drop(out);
    contents.files = extras;
    Ok(Snapshot {
        bytes: memory.bytes().map_err(backend)?,
        contents,
    })
}

/// Reads what a serialised database holds, in memory (no file is
/// written). Refuses tables this build does not know: restoring would
/// silently drop them.
pub fn contents_of(bytes: &[u8]) -> Result<Contents, String> {
    let memory = SharedMemory::default();
    memory.set_len(bytes.len() as u64).map_err(|e| e.to_string())?;
    memory.write(0, bytes).map_err(|e| e.to_string())?;
    let db = Database::builder()
        .create_with_backend(memory)
        .map_err(|e| format!("its database cannot be opened: {e}"))?;
    read_contents(&db)
}

fn read_contents(db: &Database) -> Result<Contents, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("its database cannot be read: {e}");
    let read = db.begin_read().map_err(|e| unreadable(&e))?;
    let known: Vec<&str> = ALL_TABLES.iter().map(|t| t.name()).collect();
    let mut contents = Contents::default();
    for handle in read.list_tables().map_err(|e| unreadable(&e))? {
        let name = handle.name().to_string();
        if name == BACKUP_EXTRAS.name() {
            let t = read.open_table(BACKUP_EXTRAS).map_err(|e| unreadable(&e))?;
            for row in t.iter().map_err(|e| unreadable(&e))? {
                let (k, v) = row.map_err(|e| unreadable(&e))?;
                if plain_file_name(k.value()) {
                    contents.files.push((k.value().to_string(), v.value().to_vec()));
                }
            }
            continue;
        }
        if !known.contains(&name.as_str()) {
            return Err(format!("it holds a table this fortfolio does not know ({name})"));
        }
        let def = TableDefinition::<&str, &[u8]>::new(&name);
        let rows = read
            .open_table(def)
            .map_err(|e| unreadable(&e))?
            .len()
            .map_err(|e| unreadable(&e))?;
        contents.tables.insert(name, rows);
    }
    Ok(contents)
}

/// A snapshot written next to the database and checked, ready to replace
/// it. Dropped without [`StagedRestore::commit`], it removes what it wrote.
pub struct StagedRestore {
    data_dir: PathBuf,
    /// Staged files and the names they take on commit, database first.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl RedbStore {
    /// First half of a restore (the server must be stopped): writes the
    /// checked snapshot bytes beside the database as
    /// `fortfolio.redb.restoring` (0600), opens that file and compares what
    /// it holds with `expected`, stages the key files the same way, and
    /// refuses while a server holds the database. On any error nothing is
    /// left behind and nothing current was touched.
    pub fn stage_restore(data_dir: &Path, bytes: &[u8], expected: &Contents) -> Result<StagedRestore, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let mut stage = StagedRestore {
            data_dir: data_dir.to_path_buf(),
            staged: Vec::new(),
        };
        let db_file = stage.write(FILE_NAME, bytes)?;
        let found = {
            let db = Database::open(&db_file).map_err(|e| format!("the restored database cannot be opened: {e}"))?;
            read_contents(&db)?
        };
        if found != *expected {
            return Err("the restored database does not hold what the backup's manifest lists".into());
        }
        for (name, file) in &expected.files {
            stage.write(name, file)?;
        }
        if data_dir.join(FILE_NAME).exists() {
            // Refuses while a server holds the database. Last, because the
            // probe commits a (table-creating) write to the current file.
            drop(RedbStore::open(data_dir).map_err(|e| e.to_string())?);
        }
        Ok(stage)
    }
}

impl StagedRestore {
    /// Writes `bytes` as `<name>.restoring` (0600, synced to disk).
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
        if !plain_file_name(name) {
            return Err(format!("the backup carries a file with a bad name ({name})"));
        }
        let target = self.data_dir.join(name);
        let staged = self.data_dir.join(format!("{name}.restoring"));
        // A leftover of an earlier interrupted restore is ours to replace.
        let _ = std::fs::remove_file(&staged);
        self.staged.push((staged.clone(), target));
        write_private(&staged, bytes).map_err(|e| format!("cannot write {}: {e}", staged.display()))?;
        Ok(staged)
    }

    /// Second half: renames each staged file over its target, database
    /// first; every replaced file is kept as `<name>.before-restore-<time>`.
    /// Returns the names of the kept files.
    pub fn commit(mut self) -> std::io::Result<Vec<String>> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%S");
        let mut kept = Vec::new();
        while let Some((staged, target)) = self.staged.first().cloned() {
            if target.exists() {
                let name = target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let keep = self.data_dir.join(format!("{name}.before-restore-{stamp}"));
                std::fs::rename(&target, &keep)?;
                kept.push(keep.display().to_string());
            }
            std::fs::rename(&staged, &target)?;
            self.staged.remove(0);
        }
        Ok(kept)
    }
}

/// A new file readable by the owner only, synced to disk.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl Drop for StagedRestore {
    fn drop(&mut self) {
        for (staged, _) in &self.staged {
            let _ = std::fs::remove_file(staged);
        }
    }
}
