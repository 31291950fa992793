//! Scheduled backups (`[backup]`): every `interval` the server writes an
//! encrypted snapshot into `dir`, keeps the newest `keep`, and records a
//! `backup_written` or `backup_failed` security event.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::Utc;

use super::Seal;
use crate::config::BackupConfig;
use crate::security::events::SecurityLog;
use crate::store::redb::RedbStore;

const PREFIX: &str = "fortfolio-";
const SUFFIX: &str = ".backup.age";

/// When this server last wrote a backup (Unix seconds; 0: never), for
/// `fortfolio_last_backup_timestamp_seconds`.
#[derive(Debug, Default)]
pub struct LastBackup(AtomicI64);

impl LastBackup {
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set_now(&self) {
        self.0.store(Utc::now().timestamp(), Ordering::Relaxed);
    }
}

/// Everything the schedule needs.
pub struct Scheduled {
    pub config: BackupConfig,
    /// `config.recipient`, parsed.
    pub recipient: age::x25519::Recipient,
    pub store: RedbStore,
    pub data_dir: PathBuf,
    pub events: Arc<SecurityLog>,
    pub last: Arc<LastBackup>,
}

/// Runs until `stop` turns true; a backup under way is finished first.
pub async fn run(s: Scheduled, mut stop: tokio::sync::watch::Receiver<bool>) {
    let dir = s.config.dir.clone();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::error!(dir = %dir.display(), error = %e, "cannot create the backup dir");
    }
    remove_partials(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(s.config.interval.0) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        once(&s).await;
    }
}

/// One scheduled backup, its prune and its event.
async fn once(s: &Scheduled) {
    let name = format!("{PREFIX}{}{SUFFIX}", Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let path = s.config.dir.join(name);
    let to = Seal::Recipients(vec![s.recipient.clone()]);
    let outcome = super::write(&s.store, &s.data_dir, &path, to).await;
    let mut ev = super::event(&path, "schedule", &outcome);
    match &outcome {
        Ok(w) => {
            s.last.set_now();
            let pruned = prune(&s.config.dir, s.config.keep);
            tracing::info!(file = %path.display(), bytes = w.bytes, records = w.records, pruned, "backup written");
            ev = ev.detail("pruned", pruned);
        }
        Err(e) => tracing::error!(file = %path.display(), error = %e, "scheduled backup failed"),
    }
    s.events.emit(ev).await;
}

/// This schedule's complete backups in `dir`, oldest first (the names sort
/// by time).
fn backups_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    found.sort();
    found
}

/// Deletes all but the newest `keep` backups; returns how many went.
fn prune(dir: &Path, keep: usize) -> usize {
    let all = backups_in(dir);
    let mut removed = 0;
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        match std::fs::remove_file(old) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!(file = %old.display(), error = %e, "cannot remove an old backup"),
        }
    }
    removed
}

/// Unfinished files of a schedule that was interrupted (a crash mid-write).
fn remove_partials(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(&format!("{SUFFIX}.partial")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_the_newest_of_its_own_files_only() {
        let dir = tempfile::tempdir().unwrap();
        for stamp in ["20260101T000001.000Z", "20260101T000003.000Z", "20260101T000002.000Z"] {
            std::fs::write(dir.path().join(format!("{PREFIX}{stamp}{SUFFIX}")), b"x").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();
        std::fs::write(
            dir.path().join(format!("{PREFIX}20260101T000004.000Z{SUFFIX}.partial")),
            b"x",
        )
        .unwrap();
        assert_eq!(prune(dir.path(), 2), 1);
        let left: Vec<String> = backups_in(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            left,
            [
                format!("{PREFIX}20260101T000002.000Z{SUFFIX}"),
                format!("{PREFIX}20260101T000003.000Z{SUFFIX}")
            ]
        );
        remove_partials(dir.path());
        assert!(dir.path().join("notes.txt").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}
