//! Exact decimals in requests (SPEC §1): a JSON string or a JSON number,
//! read from its literal text so `0.1` stays exactly one tenth (never via f64),
//! and refused when the text holds more digits than a decimal keeps (28):
//! the parser would round them away silently. A string holds plain digits
//! with at most 8 decimal places (`"12.50"`), as the OpenAPI document's
//! pattern says; a number may be written any way JSON allows.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// A decimal as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amount(pub Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: Box<RawValue> = Box::deserialize(d)?;
        let text = raw.get().trim();
        let inner = if let Some(stripped) = text.strip_prefix('"') {
            let inner = stripped
                .strip_suffix('"')
                .ok_or_else(|| serde::de::Error::custom("malformed string"))?;
            if !is_plain_decimal(inner) {
                return Err(serde::de::Error::custom(format!(
                    "`{}` is not a decimal like \"12.50\": digits, no leading zeros, at most 8 decimal places",
                    inner.chars().take(40).collect::<String>()
                )));
            }
            inner
        } else if text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
            text
        } else {
            return Err(serde::de::Error::custom(
                "expected a decimal number or a string holding one",
            ));
        };
        parse_exact(inner).map(Amount).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{}` is not a decimal number of at most 28 digits",
                inner.chars().take(40).collect::<String>()
            ))
        })
    }
}

/// Digits without leading zeros, then optionally `.` and 1 to 8 digits.
fn is_plain_decimal(text: &str) -> bool {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
    int_ok && frac.is_none_or(|f| digits(f) && f.len() <= 8)
}

/// The decimal `text` spells, if it holds it without rounding (scientific
/// notation's exponent only moves the point, so its mantissa is what counts).
fn parse_exact(text: &str) -> Option<Decimal> {
    match text.split_once(['e', 'E']) {
        None => Decimal::from_str_exact(text).ok(),
        Some((mantissa, _)) => {
            Decimal::from_str_exact(mantissa).ok()?;
            Decimal::from_scientific(text).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct B {
        a: Amount,
    }

    #[test]
    fn strings_and_numbers_are_exact() {
        let b: B = serde_json::from_str(r#"{"a": 0.1}"#).unwrap();
        assert_eq!(b.a.0.to_string(), "0.1");
        let b: B = serde_json::from_str(r#"{"a": "12.50"}"#).unwrap();
        assert_eq!(b.a.0.to_string(), "12.50");
        let b: B = serde_json::from_str(r#"{"a": 1e-3}"#).unwrap();
        assert_eq!(b.a.0, Decimal::new(1, 3));
        assert!(serde_json::from_str::<B>(r#"{"a": "abc"}"#).is_err());
        assert!(serde_json::from_str::<B>(r#"{"a": true}"#).is_err());
    }

    #[test]
    fn strings_are_plain_decimals_as_documented() {
        for ok in ["0", "1", "12.50", "0.12345678", "1000000000000"] {
            assert!(
                serde_json::from_str::<B>(&format!(r#"{{"a": "{ok}"}}"#)).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            " 1",
            "1 ",
            "01",
            "1.",
            ".5",
            "1e3",
            "-1",
            "+1",
            "0.123456789",
            "1.500000000",
            "",
        ] {
            assert!(
                serde_json::from_str::<B>(&format!(r#"{{"a": "{bad}"}}"#)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn digits_beyond_a_decimal_are_refused_not_rounded() {
        for text in [
            r#""1.00000000000000000000000000001""#,
            "1.00000000000000000000000000001",
            "1.00000000000000000000000000001e2",
            r#""0.000000000000000000000000000001""#,
            "1e-29",
            "123456789012345678901234567890",
        ] {
            let json = format!(r#"{{"a": {text}}}"#);
            assert!(serde_json::from_str::<B>(&json).is_err(), "{text}");
        }
        let b: B = serde_json::from_str(r#"{"a": 1.000000000000000000000000001}"#).unwrap();
        assert_eq!(b.a.0.scale(), 27);
        let b: B = serde_json::from_str(r#"{"a": 15e-1}"#).unwrap();
        assert_eq!(b.a.0.to_string(), "1.5");
    }
}
