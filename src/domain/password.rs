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

/// What the policy says of a password: zxcvbn's score (0–4) and, when it
/// is refused, why. The console shows it while a user types.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub score: u8,
    pub rejection: Option<PasswordRejection>,
}

/// Judges `raw` by the policy; `email` (when known) and `full_name` count
/// as guessable words.
pub fn assess_password(raw: &str, email: Option<&Email>, full_name: Option<&str>) -> Assessment {
    let refused = |score: u8, reason: &str, suggestions: Vec<String>| Assessment {
        score,
        rejection: Some(PasswordRejection {
            reason: reason.to_string(),
            suggestions,
        }),
    };
    let len = raw.chars().count();
    if len > MAX_LEN {
        return refused(0, &format!("password must be at most {MAX_LEN} characters"), vec![]);
    }
    let local = email.map(|e| e.local_part().to_lowercase()).unwrap_or_default();
    let prefix: String = raw.chars().take(ESTIMATE_PREFIX).collect();
    let mut inputs: Vec<&str> = Vec::new();
    if let Some(e) = email {
        inputs.extend([local.as_str(), e.as_str()]);
    }
    if let Some(name) = full_name {
        inputs.extend(name.split_whitespace());
    }
    let entropy = zxcvbn::zxcvbn(&prefix, &inputs);
    let score = u8::from(entropy.score());
    if len < MIN_LEN {
        return refused(
            score.min(2),
            &format!("password must be at least {MIN_LEN} characters"),
            vec!["Use a longer passphrase of several unrelated words.".into()],
        );
    }
    if local.chars().count() >= 3 && raw.to_lowercase().contains(&local) {
        return refused(
            0,
            "password must not contain your email address",
            vec!["Avoid personal information in passwords.".into()],
        );
    }
    if score < 3 {
        let mut suggestions = Vec::new();
        let mut reason = "password is too easy to guess".to_string();
        if let Some(fb) = entropy.feedback() {
            if let Some(w) = fb.warning() {
                reason = format!("password is too easy to guess: {w}");
            }
            suggestions = fb.suggestions().iter().map(|s| s.to_string()).collect();
        }
        return refused(score, &reason, suggestions);
    }
    Assessment { score, rejection: None }
}

impl NewPassword {
    pub fn parse(raw: &str, email: &Email, full_name: Option<&str>) -> Result<Self, PasswordRejection> {
        match assess_password(raw, Some(email), full_name).rejection {
            Some(r) => Err(r),
            None => Ok(Self(Secret::new(raw))),
        }
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
