//! `admin backup`, `admin backup verify|keygen` and `admin restore`: the
//! operator's side of `crate::backup`. Every refusal is one line that
//! starts with the file's name.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::admin_client::Backend;
use crate::backup::{self, BackupError, Checked, Key, Lock};
use crate::config::Config;
use crate::store::redb::RedbStore;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Check a backup without touching the data dir and print its manifest
    Verify {
        file: PathBuf,
        #[command(flatten)]
        key: UnsealArgs,
        #[arg(long)]
        json: bool,
    },
    /// Write a new age identity to FILE (0600) and print its public key,
    /// for `--recipient` and `backup.recipient`
    Keygen { file: PathBuf },
}

/// How a new backup is encrypted.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// Encrypt with a passphrase read from standard input (asked twice,
    /// unechoed, on a terminal)
    #[arg(long, conflicts_with = "recipient")]
    pub passphrase_stdin: bool,
    /// Encrypt to this age public key (age1…); repeatable
    #[arg(long, value_name = "AGE_PUBLIC_KEY")]
    pub recipient: Vec<String>,
}

/// How an encrypted backup is opened.
#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// Read the passphrase from standard input (asked, unechoed, on a
    /// terminal without this flag)
    #[arg(long, conflicts_with = "identity")]
    pub passphrase_stdin: bool,
    /// An age identity file (AGE-SECRET-KEY-1…) for a backup encrypted to
    /// a recipient
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// Passphrases shorter than this are refused for new backups.
const MIN_PASSPHRASE: usize = 12;

/// `admin backup FILE`: the server (or the opened data dir) writes it.
pub async fn write(backend: &Backend, file: &Path, seal: &SealArgs) -> anyhow::Result<()> {
    let path = std::path::absolute(file).with_context(|| format!("bad path {}", file.display()))?;
    if path.exists() {
        bail!("{} exists; choose a new file", path.display());
    }
    let mut body = json!({"path": path.to_string_lossy()});
    if seal.passphrase_stdin {
        let pass = passphrase(true)?;
        body["passphrase"] = Value::from(pass.expose_secret());
    } else if !seal.recipient.is_empty() {
        // The server parses them (before the snapshot) and names a bad one.
        body["recipients"] = json!(seal.recipient);
    } else if std::io::stderr().is_terminal() {
        eprintln!(
            "warning: {} will not be encrypted, and it holds the server keys: whoever reads it can sign \
             tokens and unseal every TOTP secret (use --passphrase-stdin or --recipient)",
            path.display()
        );
    }
    let busy = super::spinner(format!("writing a consistent snapshot to {}", path.display()));
    let r = backend.call(Method::POST, "/admin/backup", Some(body)).await;
    busy.finish_and_clear();
    let r = r?;
    let how = if r["encrypted"] == true {
        "encrypted"
    } else {
        "NOT encrypted: it holds the server keys, keep it private"
    };
    say!(
        "backup written: {} ({} records, {} bytes, {:.2} s; {how})",
        path.display(),
        r["records"],
        r["bytes"],
        r["seconds"].as_f64().unwrap_or(0.0)
    )?;
    Ok(())
}

/// `admin backup verify FILE`.
pub fn verify(file: &Path, key: &UnsealArgs, json: bool) -> anyhow::Result<()> {
    let checked = read(file, key)?;
    let report = checked.report(file);
    if json {
        say!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let m = &report.manifest;
    say!("{}: a good fortfolio backup", file.display())?;
    say!(
        "  format {}, written by fortfolio {}{}",
        m.format,
        m.fortfolio_version,
        m.created_at
            .map(|t| format!(" at {}", t.to_rfc3339()))
            .unwrap_or_default()
    )?;
    say!(
        "  {}, {} payload bytes{}",
        if report.encrypted { "encrypted" } else { "not encrypted" },
        m.payload_bytes,
        m.payload_sha256
            .as_deref()
            .map(|s| format!(", SHA-256 {s}"))
            .unwrap_or_default()
    )?;
    let files = if m.files.is_empty() {
        "none".to_string()
    } else {
        m.files.join(", ")
    };
    say!("  {} records; key files: {files}", m.records)?;
    for (table, n) in m.tables.iter().filter(|(_, n)| **n > 0) {
        say!("    {table:<22} {n:>9}")?;
    }
    Ok(())
}

/// `admin backup keygen FILE`.
pub fn keygen(file: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (text, public) = backup::seal::keygen();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(text.expose_secret().as_bytes())?;
    f.sync_all()?;
    say!("{public}")?;
    eprintln!(
        "identity written to {} (keep it apart from the backups: it opens them); public key above",
        file.display()
    );
    Ok(())
}

/// `admin restore FILE` (server stopped): checks everything, stages the
/// database and keys beside the current ones, compares the staged
/// database with the manifest, then swaps by rename.
pub async fn restore(config: &Config, file: &Path, key: &UnsealArgs) -> anyhow::Result<()> {
    if crate::cli::admin_client::server_running(config).await {
        bail!("stop the server first: restore replaces the database it has open");
    }
    if config.is_scaled() {
        bail!("restore is for the embedded backend; restore PostgreSQL with its own tools");
    }
    let checked = read(file, key)?;
    let data_dir = config.data_dir();
    let staged = RedbStore::stage_restore(data_dir, checked.payload(), &checked.contents)
        .map_err(|e| anyhow::anyhow!("{}: not restored: {e}", file.display()))?;
    let kept = staged
        .commit()
        .with_context(|| format!("{}: the swap into {} failed", file.display(), data_dir.display()))?;
    say!(
        "restored {} records from {} into {}",
        checked.manifest.records,
        file.display(),
        data_dir.display()
    )?;
    if !kept.is_empty() {
        say!("the replaced files are kept: {}", kept.join(", "))?;
    }
    Ok(())
}

/// Reads and checks a backup, asking for its key when it is encrypted;
/// errors are one line naming the file.
fn read(file: &Path, key: &UnsealArgs) -> anyhow::Result<Checked> {
    let unseal = |lock: Lock| -> Result<Key, BackupError> {
        if let Some(id) = &key.identity {
            return backup::seal::identities(id).map_err(BackupError::Io);
        }
        let asked = key.passphrase_stdin || std::io::stdin().is_terminal();
        match lock {
            Lock::Passphrase if asked => passphrase(false)
                .map(Key::Passphrase)
                .map_err(|e| BackupError::Io(e.to_string())),
            _ => Err(backup::seal::locked(lock)),
        }
    };
    backup::read(file, unseal, true).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// A passphrase: asked unechoed on a terminal (twice for a new backup),
/// else the first line of standard input.
fn passphrase(new: bool) -> anyhow::Result<SecretString> {
    let pass = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("backup passphrase: ")?;
        if new && rpassword::prompt_password("again: ")? != first {
            bail!("the two passphrases differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the passphrase from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if pass.is_empty() {
        bail!("the passphrase is empty");
    }
    if new && pass.chars().count() < MIN_PASSPHRASE {
        bail!("a backup passphrase needs at least {MIN_PASSPHRASE} characters");
    }
    Ok(SecretString::from(pass))
}
