//! Encryption of whole backup files with age (age-encryption.org/v1): an
//! scrypt passphrase or X25519 recipients. Nothing here is hand-rolled.

use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretString};

use super::BackupError;

/// Every age file starts with this line.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// How a new backup file is written.
pub enum Seal {
    Plain,
    Passphrase(SecretString),
    Recipients(Vec<age::x25519::Recipient>),
}

impl Seal {
    pub fn is_plain(&self) -> bool {
        matches!(self, Seal::Plain)
    }
}

/// What an encrypted file was locked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    Passphrase,
    Recipient,
}

/// What opens an encrypted file.
pub enum Key {
    Passphrase(SecretString),
    Identities(Vec<Box<dyn age::Identity>>),
}

/// Parses an age public key (`age1…`).
pub fn recipient(text: &str) -> Result<age::x25519::Recipient, String> {
    text.trim()
        .parse::<age::x25519::Recipient>()
        .map_err(|e| format!("`{}` is not an age public key (age1…): {e}", text.trim()))
}

/// Reads an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments).
pub fn identities(path: &Path) -> Result<Key, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read the identity file {}: {e}", path.display()))?;
    let file = age::IdentityFile::from_buffer(&text[..])
        .map_err(|e| format!("{} is not an age identity file: {e}", path.display()))?;
    let ids = file
        .into_identities()
        .map_err(|e| format!("{} is not an age identity file: {e}", path.display()))?;
    if ids.is_empty() {
        return Err(format!("{} holds no age identity", path.display()));
    }
    Ok(Key::Identities(ids))
}

/// A new X25519 identity: (the identity file's text, its public key).
pub fn keygen() -> (SecretString, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let text = format!(
        "# created: {}\n# public key: {public}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        id.to_string().expose_secret()
    );
    (SecretString::from(text), public)
}

/// Writes `parts` to a new file at `path` (0600) through `seal`: first as
/// `<path>.partial`, synced, then renamed, so a crash or a full disk never
/// leaves a file under the final name. Returns the bytes written.
pub fn write_file(path: &Path, parts: &[&[u8]], seal: &Seal) -> Result<u64, BackupError> {
    let io = |e: std::io::Error| BackupError::Io(format!("cannot write {}: {e}", path.display()));
    if path.exists() {
        return Err(BackupError::Io(format!("{} exists; choose a new file", path.display())));
    }
    let staged = partial_path(path);
    let partial = Partial(Some(staged.clone()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged)
        .map_err(io)?;
    let mut out = BufWriter::new(file);
    match seal {
        Seal::Plain => {
            for p in parts {
                out.write_all(p).map_err(io)?;
            }
        }
        Seal::Passphrase(pass) => {
            let enc = age::Encryptor::with_user_passphrase(pass.clone());
            seal_into(enc, &mut out, parts).map_err(io)?;
        }
        Seal::Recipients(to) => {
            let enc = age::Encryptor::with_recipients(to.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| BackupError::Io(format!("cannot encrypt: {e}")))?;
            seal_into(enc, &mut out, parts).map_err(io)?;
        }
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    let written = file.metadata().map_err(io)?.len();
    drop(file);
    if path.exists() {
        return Err(BackupError::Io(format!("{} exists; choose a new file", path.display())));
    }
    std::fs::rename(&staged, path).map_err(io)?;
    partial.keep();
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(written)
}

fn seal_into(enc: age::Encryptor, out: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut w = enc.wrap_output(out)?;
    for p in parts {
        w.write_all(p)?;
    }
    w.finish()?;
    Ok(())
}

/// `<path>.partial`: where a backup is written before it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Removes an unfinished file unless it was renamed into place.
struct Partial(Option<PathBuf>);

impl Partial {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The refusal for a file opened without (or with the wrong kind of) key.
pub fn locked(lock: Lock) -> BackupError {
    BackupError::Locked(match lock {
        Lock::Passphrase => "with a passphrase: give --passphrase-stdin".into(),
        Lock::Recipient => "to an age public key: give --identity FILE".into(),
    })
}

/// Whether `bytes` are an age file.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(AGE_MAGIC)
}

/// The plain bytes of a backup file: as they are, or decrypted with the
/// key `unseal` gives for the file's kind of lock (asked only when the file
/// is encrypted).
pub fn open(bytes: Vec<u8>, unseal: impl FnOnce(Lock) -> Result<Key, BackupError>) -> Result<Vec<u8>, BackupError> {
    if !is_sealed(&bytes) {
        return Ok(bytes);
    }
    let d = age::Decryptor::new_buffered(&bytes[..])
        .map_err(|e| BackupError::Damaged(format!("its encryption header cannot be read ({e})")))?;
    let lock = if d.is_scrypt() {
        Lock::Passphrase
    } else {
        Lock::Recipient
    };
    let ids: Vec<Box<dyn age::Identity>> = match (unseal(lock)?, lock) {
        (Key::Passphrase(p), Lock::Passphrase) => vec![Box::new(age::scrypt::Identity::new(p))],
        (Key::Identities(ids), Lock::Recipient) => ids,
        (Key::Identities(_), Lock::Passphrase) => return Err(locked(lock)),
        (Key::Passphrase(_), Lock::Recipient) => return Err(locked(lock)),
    };
    let mut reader = d
        .decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => match lock {
                Lock::Passphrase => BackupError::WrongKey("the passphrase is wrong".into()),
                Lock::Recipient => BackupError::WrongKey("none of the given identities opens it".into()),
            },
            other => BackupError::Damaged(format!("it cannot be decrypted ({other})")),
        })?;
    let mut plain = Vec::with_capacity(bytes.len());
    reader.read_to_end(&mut plain).map_err(|e| {
        BackupError::Damaged(format!(
            "its encrypted data is cut short or altered (it fails authentication: {e})"
        ))
    })?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn a_passphrase_round_trips_and_a_wrong_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.age");
        write_file(
            &path,
            &[b"hello ", b"world"],
            &Seal::Passphrase(pass("correct horse battery")),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(is_sealed(&bytes));
        assert!(!bytes.windows(5).any(|w| w == b"hello"));
        let plain = open(bytes.clone(), |lock| {
            assert_eq!(lock, Lock::Passphrase);
            Ok(Key::Passphrase(pass("correct horse battery")))
        })
        .unwrap();
        assert_eq!(plain, b"hello world");
        let e = open(bytes.clone(), |_| Ok(Key::Passphrase(pass("wrong horse")))).unwrap_err();
        assert!(matches!(e, BackupError::WrongKey(_)), "{e}");
        let cut = bytes[..bytes.len() - 5].to_vec();
        let e = open(cut, |_| Ok(Key::Passphrase(pass("correct horse battery")))).unwrap_err();
        assert!(matches!(e, BackupError::Damaged(_)), "{e}");
        assert!(!partial_path(&path).exists());
    }

    #[test]
    fn a_recipient_file_opens_with_its_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let (id_text, public) = keygen();
        let id_path = dir.path().join("id.txt");
        std::fs::write(&id_path, id_text.expose_secret()).unwrap();
        let path = dir.path().join("b.age");
        write_file(
            &path,
            &[b"payload"],
            &Seal::Recipients(vec![recipient(&public).unwrap()]),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let plain = open(bytes.clone(), |lock| {
            assert_eq!(lock, Lock::Recipient);
            identities(&id_path).map_err(BackupError::Io)
        })
        .unwrap();
        assert_eq!(plain, b"payload");
        let (other, _) = keygen();
        std::fs::write(&id_path, other.expose_secret()).unwrap();
        let e = open(bytes.clone(), |_| identities(&id_path).map_err(BackupError::Io)).unwrap_err();
        assert!(matches!(e, BackupError::WrongKey(_)), "{e}");
        // A passphrase for a file sealed to a key names the key it needs.
        let e = open(bytes, |_| Ok(Key::Passphrase(pass("some passphrase")))).unwrap_err();
        assert!(e.to_string().contains("--identity"), "{e}");
        assert!(
            write_file(&path, &[b"again"], &Seal::Plain).is_err(),
            "an existing file is kept"
        );
        assert!(recipient("age1nope").is_err());
    }
}
