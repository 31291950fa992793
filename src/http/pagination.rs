//! List conventions (SPEC §1): `limit` (default 50, max 500) and an opaque
//! `cursor`; responses are `{"items": [...], "next_cursor": ... | null}`.
//!
//! Each list states the syntax of its cursors ([`CursorSyntax`]); the same
//! definition checks a cursor and documents it. A cursor of the right form
//! is never refused: a page holds the items after it, in key order, so a
//! cursor whose item has since gone still continues where it was.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};

use crate::http::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

/// The form of one list's cursors.
pub trait CursorSyntax {
    /// The same rule as a regular expression, for the document.
    const PATTERN: &'static str;
    fn valid(cursor: &str) -> bool;
}

/// Lists keyed by a UUID as we write them (lower-case, hyphenated).
pub struct UuidCursor;

impl CursorSyntax for UuidCursor {
    const PATTERN: &'static str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
    fn valid(c: &str) -> bool {
        uuid::Uuid::try_parse(c).is_ok_and(|id| id.to_string() == c)
    }
}

/// Lists keyed by 32 lower-case hex digits (device ids).
pub struct HexCursor;

impl CursorSyntax for HexCursor {
    const PATTERN: &'static str = "^[0-9a-f]{32}$";
    fn valid(c: &str) -> bool {
        c.len() == 32 && c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// Lists keyed by symbol, as stored (upper-case).
pub struct SymbolCursor;

impl CursorSyntax for SymbolCursor {
    const PATTERN: &'static str = "^[A-Z0-9^][A-Z0-9.^=_-]{0,14}$";
    fn valid(c: &str) -> bool {
        crate::domain::Symbol::parse(c).is_ok_and(|s| s.as_str() == c)
    }
}

/// `limit` and `cursor` of a list whose cursors have syntax `C`.
#[derive(Debug, Deserialize)]
#[serde(bound = "")]
pub struct PageQuery<C = UuidCursor> {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    #[serde(skip)]
    syntax: PhantomData<C>,
}

impl<C> Default for PageQuery<C> {
    fn default() -> Self {
        Self {
            limit: None,
            cursor: None,
            syntax: PhantomData,
        }
    }
}

/// A parameter of the document, by its JSON form.
pub fn param(value: serde_json::Value) -> Option<Parameter> {
    serde_json::from_value(value).ok()
}

impl<C: CursorSyntax> IntoParams for PageQuery<C> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        [
            json!({
                "name": "limit", "in": "query", "required": false,
                "description": format!("Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."),
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            }),
            json!({
                "name": "cursor", "in": "query", "required": false,
                "description": "The previous page's `next_cursor`.",
                "schema": {"type": "string", "pattern": C::PATTERN},
            }),
        ]
        .into_iter()
        .filter_map(param)
        .collect()
    }
}

impl<C: CursorSyntax> PageQuery<C> {
    pub fn limit(&self) -> ApiResult<usize> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
                _ => Err(ApiError::validation(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }

    /// The cursor, if one was sent; one of the wrong form is `422`.
    pub fn cursor(&self) -> ApiResult<Option<&str>> {
        match self.cursor.as_deref() {
            Some(c) if C::valid(c) => Ok(Some(c)),
            Some(_) => Err(invalid_cursor()),
            None => Ok(None),
        }
    }
}

impl<C> PageQuery<C> {
    /// The cursor as `parse` reads it (lists whose cursors are not keys).
    pub fn parse_cursor<'a, T>(&'a self, parse: impl Fn(&'a str) -> Option<T>) -> ApiResult<Option<T>> {
        match self.cursor.as_deref() {
            Some(c) => parse(c).map(Some).ok_or_else(invalid_cursor),
            None => Ok(None),
        }
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::validation("cursor", "cursor is not valid for this list")
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Pages an in-memory list by key: the items with keys after the
    /// cursor, in key order.
    pub fn paginate<C: CursorSyntax>(
        mut items: Vec<T>,
        q: &PageQuery<C>,
        key: impl Fn(&T) -> String,
    ) -> ApiResult<Self> {
        let limit = q.limit()?;
        let after = q.cursor()?;
        items.sort_by_cached_key(&key);
        let start = after.map_or(0, |c| items.partition_point(|i| key(i).as_str() <= c));
        Ok(Self::from_overfetch(
            items.into_iter().skip(start).collect(),
            limit,
            key,
        ))
    }

    /// A page from items fetched with `limit + 1`: the extra item only tells
    /// that another page exists; the cursor is the key of the last item kept.
    pub fn from_overfetch(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Self {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(&key)
        } else {
            None
        };
        Self { items, next_cursor }
    }

    /// The same page with its items rendered.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agrees<C: CursorSyntax>(cases: &[&str]) {
        let re = regex::Regex::new(C::PATTERN).unwrap();
        for c in cases {
            assert_eq!(re.is_match(c), C::valid(c), "{c:?}");
        }
    }

    #[test]
    fn cursor_patterns_agree_with_their_checks() {
        let id = uuid::Uuid::now_v7().to_string();
        agrees::<UuidCursor>(&[&id, &id.to_uppercase(), &id.replace('-', ""), "zzz", ""]);
        agrees::<HexCursor>(&[
            "0123456789abcdef0123456789abcdef",
            "0123456789ABCDEF0123456789abcdef",
            "12",
            "",
        ]);
        agrees::<SymbolCursor>(&["AAPL", "BRK.B", "^GSPC", "aapl", " AAPL", ".A", "", "ABCDEFGHIJKLMNOP"]);
    }

    #[test]
    fn a_cursor_continues_after_its_key_even_when_its_item_is_gone() {
        let q = |c: &str| PageQuery::<SymbolCursor> {
            limit: Some("2".into()),
            cursor: Some(c.into()),
            syntax: PhantomData,
        };
        let items = vec!["D", "A", "C", "B", "E"];
        let page = Page::paginate(items.clone(), &q("B"), |s| s.to_string()).unwrap();
        assert_eq!((page.items, page.next_cursor.as_deref()), (vec!["C", "D"], Some("D")));
        let gone = Page::paginate(items, &q("BB"), |s| s.to_string()).unwrap();
        assert_eq!(gone.items, vec!["C", "D"]);
    }

    #[test]
    fn limit_is_plain_digits_in_range() {
        for (raw, ok) in [
            ("1", true),
            ("500", true),
            ("0", false),
            ("501", false),
            ("+5", false),
            ("abc", false),
        ] {
            let q = PageQuery::<UuidCursor> {
                limit: Some(raw.into()),
                ..Default::default()
            };
            assert_eq!(q.limit().is_ok(), ok, "{raw}");
        }
    }
}
