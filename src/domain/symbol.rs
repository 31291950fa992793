//! A market symbol: 1–15 characters, upper-cased; letters and digits, and
//! `.`, `-`, `^`, `=`, `_` after the first (`BRK.B`, `^GSPC`, `EURUSD=X`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_uppercase();
        if s.is_empty() || s.len() > 15 {
            return Err("symbol must be 1 to 15 characters".into());
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '^');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '^' | '=' | '_'));
        if !first_ok || !rest_ok {
            return Err(format!(
                "symbol `{}` may hold only letters, digits and . - ^ = _",
                raw.trim_matches(|c: char| c.is_ascii_whitespace())
                    .chars()
                    .take(20)
                    .collect::<String>()
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_validates() {
        assert_eq!(Symbol::parse(" spy ").unwrap().as_str(), "SPY");
        assert_eq!(Symbol::parse("brk.b").unwrap().as_str(), "BRK.B");
        assert_eq!(Symbol::parse("^GSPC").unwrap().as_str(), "^GSPC");
        for bad in ["", "A B", "$$$", "TOOLONGSYMBOL1234", "../etc", "S;DROP"] {
            assert!(Symbol::parse(bad).is_err(), "{bad}");
        }
    }
}
