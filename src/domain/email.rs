//! A syntactically valid, normalised email address.

use std::fmt;

/// Trimmed, with the domain lower-cased. Accounts are keyed by
/// [`Email::key`], the whole address lower-cased, so `Ann@x.io` and
/// `ann@x.io` cannot be two accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The rules are exactly those of the OpenAPI document's pattern
    /// (`http::schema::EMAIL_PATTERN`) and `maxLength` (254 characters, as
    /// sent): ASCII whitespace around the address is ignored.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().count() > 254 {
            return Err("email must be at most 254 characters".into());
        }
        let s = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if s.is_empty() {
            return Err("email must not be empty".into());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| "email must contain '@'".to_string())?;
        if local.is_empty() {
            return Err("email local part must not be empty".into());
        }
        if local.contains('@') {
            return Err("email must contain exactly one '@'".into());
        }
        if local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
        {
            return Err("email local part contains a forbidden character".into());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err("email local part has a misplaced '.'".into());
        }
        let domain = domain.to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err("email domain must contain a '.'".into());
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err("email domain is not a valid host name".into());
            }
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity key: the whole address lower-cased.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_domain_and_trims() {
        let e = Email::parse("  Ann.Lee@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee@example.com");
        assert_eq!(e.key(), "ann.lee@example.com");
        assert_eq!(e.local_part(), "Ann.Lee");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "plain", "@x.io", "a@", "a@x", "a b@x.io", "a@@x.io", "a@x..io", "a@-x.io", ".a@x.io", "a@x_y.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
