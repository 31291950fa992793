//! A new password that passed the strength policy (SPEC §2): 12–1024
//! characters, zxcvbn score ≥ 3, and not containing the email's local part.

use super::{Email, Secret};

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 1024;
/// zxcvbn's matching grows faster than linearly; a prefix this long already
/// decides the score (a strong prefix makes a strong password).
const ESTIMATE_PREFIX: usize = 128;

#[derive(Debug)]
pub struct NewPassword(Secret);

/// Why a password was refused, with the estimator's advice.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordRejection {
    pub reason: String,
    pub suggestions: Vec<String>,
}

impl NewPassword {
    pub fn parse(raw: &str, email: &Email, full_name: Option<&str>) -> Result<Self, PasswordRejection> {
        let reject = |reason: &str, suggestions: Vec<String>| PasswordRejection {
            reason: reason.to_string(),
            suggestions,
        };
        let len = raw.chars().count();
        if len < MIN_LEN {
            return Err(reject(
                &format!("password must be at least {MIN_LEN} characters"),
                vec!["Use a longer passphrase of several unrelated words.".into()],
            ));
        }
        if len > MAX_LEN {
            return Err(reject(
                &format!("password must be at most {MAX_LEN} characters"),
                vec![],
            ));
        }
        let local = email.local_part().to_lowercase();
        if local.chars().count() >= 3 && raw.to_lowercase().contains(&local) {
            return Err(reject(
                "password must not contain your email address",
                vec!["Avoid personal information in passwords.".into()],
            ));
        }
        let prefix: String = raw.chars().take(ESTIMATE_PREFIX).collect();
        let mut inputs = vec![local.as_str(), email.as_str()];
        if let Some(name) = full_name {
            inputs.extend(name.split_whitespace());
        }
        let entropy = zxcvbn::zxcvbn(&prefix, &inputs);
        if u8::from(entropy.score()) < 3 {
            let mut suggestions = Vec::new();
            let mut reason = "password is too easy to guess".to_string();
            if let Some(fb) = entropy.feedback() {
                if let Some(w) = fb.warning() {
                    reason = format!("password is too easy to guess: {w}");
                }
                suggestions = fb.suggestions().iter().map(|s| s.to_string()).collect();
            }
            return Err(reject(&reason, suggestions));
        }
        Ok(Self(Secret::new(raw)))
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("margaret@example.com").unwrap()
    }

    #[test]
    fn refuses_short_common_and_personal() {
        assert!(NewPassword::parse("password", &email(), None).is_err());
        assert!(NewPassword::parse("password1234", &email(), None).is_err());
        assert!(NewPassword::parse("Margaret-correct-horse-93", &email(), None).is_err());
        assert!(NewPassword::parse(&"a".repeat(1025), &email(), None).is_err());
    }

    #[test]
    fn accepts_a_strong_passphrase() {
        assert!(NewPassword::parse("violet-anchor-tundra-41", &email(), None).is_ok());
        let long = "violet-anchor-tundra-41".repeat(50);
        assert!(NewPassword::parse(&long[..1000], &email(), None).is_ok());
    }
}
