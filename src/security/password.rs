//! Password hashing with argon2id (OWASP: m=19456 KiB, t=2, p=1) on the
//! blocking pool, behind a semaphore sized to the cores so a burst of logins
//! queues instead of starving every other request.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::domain::Secret;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// No password is longer (new passwords are at most 1024 characters), so a
/// longer one is refused unhashed.
pub const MAX_PASSWORD_BYTES: usize = 4096;

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(19_456, 2, 1, None).map_err(|e| HashError(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes synchronously (for the CLI and start-up).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

pub fn verify_blocking(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2()
        .map(|a| a.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

type Job = Box<dyn FnOnce() + Send>;

/// A pool of one hashing thread per core. Jobs queue in a channel and the
/// threads run them back to back, so a burst of logins keeps every core
/// hashing without a round trip through the async scheduler between hashes,
/// and never occupies the async workers (the effect of a semaphore sized to
/// the cores, without its hand-off gaps).
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Verified against when the account does not exist, so an unknown email
    /// costs the same time as a wrong password.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    pub fn new() -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(4096);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..cores {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // every sender dropped: shut down
                    }
                })
                .map_err(|e| HashError(e.to_string()))?;
        }
        Ok(Self {
            jobs: tx,
            dummy_hash: Arc::new(hash_blocking(&crate::security::random_token(24))?),
        })
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let jobs = self.jobs.clone();
        // A full queue (4096 waiting hashes) blocks; do that off the workers.
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || jobs.send(job))
                    .await
                    .map_err(|e| HashError(e.to_string()))?
                    .map_err(|_| HashError("hashing pool stopped".into()))?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(HashError("hashing pool stopped".into()));
            }
        }
        rx.await.map_err(|_| HashError("hashing job was dropped".into()))
    }

    pub async fn hash(&self, password: &Secret) -> Result<String, HashError> {
        let pw = password.clone();
        self.run(move || hash_blocking(pw.expose())).await?
    }

    /// Verifies `password` against `hash`, or against the dummy hash when
    /// there is no account; either way one full argon2id computation. A
    /// password longer than [`MAX_PASSWORD_BYTES`] matches nothing and is
    /// refused without spending a hash on it.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> bool {
        if password.expose().len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let pw = password.clone();
        let (target, real) = match hash {
            Some(h) => (h.to_string(), true),
            None => (self.dummy_hash.as_str().to_string(), false),
        };
        let ok = self
            .run(move || verify_blocking(pw.expose(), &target))
            .await
            .unwrap_or(false);
        ok && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_uses_owasp_parameters_and_verifies() {
        let h = hash_blocking("violet-anchor-tundra-41").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("violet-anchor-tundra-41", &h));
        assert!(!verify_blocking("violet-anchor-tundra-42", &h));
    }
}
