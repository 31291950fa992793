//! List conventions (SPEC §1): `limit` (default 50, max 500) and an opaque
//! `cursor`; responses are `{"items": [...], "next_cursor": ... | null}`.

use serde::{Deserialize, Serialize};

use crate::http::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> ApiResult<usize> {
        match &self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::validation(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }

    /// The cursor as `parse` reads it; a cursor it refuses is `422`.
    pub fn parse_cursor<'a, T>(&'a self, parse: impl Fn(&'a str) -> Option<T>) -> ApiResult<Option<T>> {
        match self.cursor.as_deref() {
            Some(c) => parse(c).map(Some).ok_or_else(invalid_cursor),
            None => Ok(None),
        }
    }

    /// The cursor of a list paged by id: the id (a UUID, as we write them)
    /// of the last item seen.
    pub fn id_cursor(&self) -> ApiResult<Option<&str>> {
        self.parse_cursor(|c| {
            uuid::Uuid::try_parse(c)
                .is_ok_and(|id| id.to_string() == c)
                .then_some(c)
        })
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::validation("cursor", "cursor is not valid for this list")
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Pages an already ordered list; the cursor is the key of the last item
    /// of the previous page.
    pub fn paginate(items: Vec<T>, q: &PageQuery, key: impl Fn(&T) -> String) -> ApiResult<Self> {
        let limit = q.limit()?;
        let start = match &q.cursor {
            None => 0,
            Some(c) => items.iter().position(|i| &key(i) == c).ok_or_else(invalid_cursor)? + 1,
        };
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
