//! Schemas of the API's constrained strings and numbers, named once and
//! used by the request and response types (`#[schema(value_type = …)]`).
//! Each says exactly what the server's parser accepts; the tests below hold
//! the patterns to the parsers on the same inputs.

use serde_json::json;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

fn schema(value: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(value).unwrap_or_else(|_| RefOr::T(Schema::default()))
}

/// Declares a named schema type from its JSON Schema.
macro_rules! named_schema {
    ($(#[$meta:meta])* $name:ident => $value:expr) => {
        $(#[$meta])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                schema($value)
            }
        }

        impl ToSchema for $name {}
    };
}

named_schema!(
    /// One proof for `POST /auth/reauthenticate`: the password, or a current
    /// TOTP code of an account with 2FA on; exactly one of the two.
    ReauthenticateProof => json!({
        "oneOf": [
            {
                "type": "object", "required": ["password"], "additionalProperties": false,
                "properties": {"password": {"type": "string", "format": "password"}},
            },
            {
                "type": "object", "required": ["code"], "additionalProperties": false,
                "properties": {"code": {"type": "string", "description": "A 6-digit TOTP code.", "example": "123456"}},
            },
        ],
    })
);

/// An email address as `Email::parse` reads it: ASCII whitespace around it
/// is ignored; no Unicode space or control character inside the local part.
pub const EMAIL_PATTERN: &str = r#"^[\t\n\x0c\r ]*[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f@<>()\[\],;:\\".]+(\.[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f@<>()\[\],;:\\".]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+[\t\n\x0c\r ]*$"#;

/// A market symbol as `Symbol::parse` reads it (case-insensitive, ASCII
/// whitespace around it ignored).
pub const SYMBOL_PATTERN: &str = r"^[\t\n\x0c\r ]*[A-Za-z0-9^][A-Za-z0-9.^=_-]{0,14}[\t\n\x0c\r ]*$";

/// A decimal string greater than 0 and at most 10^12, with 1 to 8 decimal
/// places if any, no leading zeros (`money::Amount` and the order checks).
pub const POSITIVE_DECIMAL_PATTERN: &str = r"^([1-9][0-9]{0,11}(\.[0-9]{1,8})?|1000000000000(\.0{1,8})?|0\.([1-9][0-9]{0,7}|0[1-9][0-9]{0,6}|00[1-9][0-9]{0,5}|000[1-9][0-9]{0,4}|0000[1-9][0-9]{0,3}|00000[1-9][0-9]{0,2}|000000[1-9][0-9]?|0000000[1-9]))$";

/// The same from 0.
pub const DECIMAL_PATTERN: &str = r"^((0|[1-9][0-9]{0,11})(\.[0-9]{1,8})?|1000000000000(\.0{1,8})?)$";

named_schema!(
    /// An email address of at most 254 characters: one `@`, a local part
    /// without spaces, control characters, `<>()[],;:\"` or misplaced dots,
    /// and a domain of letters, digits and hyphens with at least one dot.
    EmailAddress => json!({
        "type": "string", "minLength": 3, "maxLength": 254,
        "pattern": EMAIL_PATTERN, "example": "ann@example.com",
    })
);

named_schema!(
    /// A new password: 12 to 1024 characters, not containing the email's
    /// local part, and strong enough for the zxcvbn estimator (score 3 of 4;
    /// a weaker one is `422 weak_password` with the estimator's advice).
    NewPassword => json!({
        "type": "string", "format": "password",
        "minLength": crate::domain::password::MIN_LEN, "maxLength": crate::domain::password::MAX_LEN,
        "example": "correct horse battery staple 42",
    })
);

named_schema!(
    /// A display name: at most 200 characters, no control characters;
    /// surrounding spaces are trimmed and an empty name is none.
    FullName => json!({
        "type": "string", "maxLength": 200, "pattern": r"^[^\x00-\x1f\x7f-\x9f]*$", "example": "Ann Example",
    })
);

named_schema!(
    /// A market symbol: 1–15 letters, digits or `. - ^ = _` (not first,
    /// except `^`), case-insensitive.
    SymbolText => json!({
        "type": "string", "pattern": SYMBOL_PATTERN, "example": "AAPL",
    })
);

named_schema!(
    /// A quantity or price: an exact decimal as a JSON string (`"12.50"`) or
    /// number (`12.5`), greater than 0, at most 10^12, at most 8 decimal places.
    PositiveAmount => json!({
        "oneOf": [
            {"type": "string", "pattern": POSITIVE_DECIMAL_PATTERN},
            {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000_000_000i64, "multipleOf": 0.00000001},
        ],
        "example": "12.5",
    })
);

named_schema!(
    /// A fee: as a quantity, but 0 is allowed.
    FeeAmount => json!({
        "oneOf": [
            {"type": "string", "pattern": DECIMAL_PATTERN},
            {"type": "number", "minimum": 0, "maximum": 1_000_000_000_000i64, "multipleOf": 0.00000001},
        ],
        "example": "1.00",
    })
);

named_schema!(
    /// An exact decimal, always as a JSON string.
    Money => json!({
        "type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "example": "1234.50",
    })
);

named_schema!(
    /// An RFC 3339 timestamp in UTC with microseconds.
    Timestamp => json!({
        "type": "string", "format": "date-time", "example": "2026-11-28T09:30:00.123456Z",
    })
);

named_schema!(
    /// A calendar date.
    Date => json!({
        "type": "string", "format": "date", "example": "2026-11-27",
    })
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, Symbol};

    fn matches(pattern: &str, s: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(s)
    }

    #[test]
    fn email_pattern_agrees_with_the_parser() {
        for s in [
            "ann@example.com",
            "  ann@example.com ",
            "a.b+c@x-y.example.org",
            "ünï@example.com",
            "ann",
            "ann@x",
            "@example.com",
            "ann@@example.com",
            ".ann@example.com",
            "ann.@example.com",
            "a..b@example.com",
            "a b@example.com",
            "ann@-x.com",
            "ann@x-.com",
            "ann@x..com",
            "ann@exa_mple.com",
            "a(b@example.com",
            "ann@example.com.",
            "\u{a0}ann@example.com",
            "ann\u{2028}@example.com",
            "\tann@example.com\r\n",
        ] {
            assert_eq!(matches(EMAIL_PATTERN, s), Email::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn symbol_pattern_agrees_with_the_parser() {
        for s in [
            "AAPL",
            "brk.b",
            "^GSPC",
            "EURUSD=X",
            " SPY ",
            "",
            ".A",
            "A.",
            "ABCDEFGHIJKLMNOP",
            "A B",
            "A$",
            "\u{a0}A",
        ] {
            assert_eq!(matches(SYMBOL_PATTERN, s), Symbol::parse(s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn decimal_patterns_agree_with_the_order_checks() {
        use rust_decimal::Decimal;
        let max = Decimal::from(1_000_000_000_000i64);
        for s in [
            "0",
            "1",
            "12.50",
            "0.12345678",
            "0.00000001",
            "0.000000001",
            "0.10",
            "1000000000000",
            "1000000000000.00000000",
            "1000000000000.1",
            "999999999999.99999999",
            "10000000000000",
            "01",
            "1.",
            ".5",
            "1e3",
            "-1",
            " 1",
            "1.500000000",
            "0.0",
            "0.00000000",
        ] {
            let parsed: Result<crate::http::money::Amount, _> = serde_json::from_str(&format!("\"{s}\""));
            let value = parsed
                .ok()
                .map(|a| a.0.normalize())
                .filter(|d| d.scale() <= 8 && *d <= max);
            let positive = value.is_some_and(|d| d > Decimal::ZERO);
            assert_eq!(matches(POSITIVE_DECIMAL_PATTERN, s), positive, "positive {s:?}");
            assert_eq!(matches(DECIMAL_PATTERN, s), value.is_some(), "non-negative {s:?}");
        }
    }
}
