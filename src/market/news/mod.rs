//! Market news: feed parsing, de-duplication keys, symbol tagging and
//! sentiment. This is the pure-logic half of the news part of the market-data
//! design; fetching feeds over HTTP and storing items live elsewhere and call
//! into this module.
//!
//! Pipeline for one feed document:
//!
//! 1. [`parse_feed`] reads RSS (2.0, 1.0, 0.9x) or Atom with `feed-rs` (which
//!    also accepts JSON Feed) and turns each entry into a [`NewsItem`]:
//!    - `title` and `summary` are plain text: HTML tags dropped, entities
//!      decoded, whitespace collapsed; the summary (description, else summary,
//!      else content) is cut to [`SUMMARY_MAX_CHARS`] characters;
//!    - `url` is the entry's alternate link (else its first link);
//!    - `source` is the item's own `<source>` (RSS text, or the Atom source
//!      feed's `<title>`), else the feed title, else the caller's fallback;
//!    - `published_at` is the published time, else the updated time, else now;
//!    - entries with neither a title nor a link are skipped;
//!    - `sentiment` is scored on title + summary ([`sentiment`]);
//!    - `symbols` is left empty: tagging needs the caller's symbol list, see
//!      [`tag_items`] and [`tagging::SymbolIndex`].
//! 2. [`dedup_key`] names a story by guid, else link, else title; the item's
//!    `id` is a hash of that key, so the same story fetched twice (or from
//!    two feeds that share a guid/link) gets the same id and [`dedup`] can
//!    drop the repeat.
//!
//! Bytes that are not a feed (not XML, HTML pages, XML of another kind,
//! broken JSON) give [`NewsError::Parse`]; this module never panics on input.

pub mod sentiment;
pub mod tagging;

pub use tagging::SymbolIndex;

use std::collections::HashSet;

use chrono::Utc;
use sha2::{Digest, Sha256};

/// Longest summary kept, in characters (not bytes), so one chatty feed cannot
/// bloat storage or API responses.
pub const SUMMARY_MAX_CHARS: usize = 500;

/// Length of [`NewsItem::id`]: the first 32 hex digits (128 bits) of the
/// SHA-256 of the de-dup key, plenty to make accidental collisions moot.
pub const ID_HEX_LEN: usize = 32;

/// Offline sample feed: 503 Federal Reserve Board monetary-policy press
/// releases, 1996-2014 (US government public information; credit "Board of
/// Governors of the Federal Reserve System", see
/// `assets/news/PROVENANCE.md`).
pub const BUNDLED_FRB_FEED: &[u8] = include_bytes!("../../../assets/news/frb_monetary_press_releases_1996-2014.rss");

/// Source name to pass as `fallback_source` for [`BUNDLED_FRB_FEED`].
pub const BUNDLED_FRB_SOURCE: &str = "Board of Governors of the Federal Reserve System";

pub use crate::domain::market::{NewsItem, Sentiment};

#[derive(Debug, thiserror::Error)]
pub enum NewsError {
    /// The bytes are not a readable RSS, Atom or JSON feed.
    #[error("not a readable news feed: {0}")]
    Parse(String),
}

/// Parses an RSS or Atom document into news items, in document order.
///
/// `fallback_source` names the source when neither the item nor the feed
/// does (typically the configured feed's name or host).
pub fn parse_feed(bytes: &[u8], fallback_source: &str) -> Result<Vec<NewsItem>, NewsError> {
    let parser = feed_rs::parser::Builder::new()
        // feed-rs invents an id for entries without one (a hash of the link,
        // else a random UUID). A random id would change on every fetch and
        // defeat de-duplication, so report "no guid" as an empty string and
        // let `dedup_key` fall back to the link or title.
        .id_generator(|_links, _title, _base| String::new())
        .build();
    let feed = parser.parse(bytes).map_err(|e| NewsError::Parse(e.to_string()))?;

    let feed_title = feed
        .title
        .as_ref()
        .map(|t| html_to_text(&t.content))
        .filter(|t| !t.is_empty());
    let fallback_source = fallback_source.trim();
    // feed-rs ignores per-item <source>; read it in a second, cheap pass and
    // line the results up with feed-rs's entries (both are in document
    // order). Any disagreement in count means we cannot line them up safely,
    // so the feed title is used for every item instead.
    let sources_per_item = (if contains_bytes(bytes, b"source") {
        item_sources(bytes)
    } else {
        None
    })
    .filter(|sources| sources.len() == feed.entries.len());

    let now = Utc::now();
    let mut items = Vec::with_capacity(feed.entries.len());
    for (index, entry) in feed.entries.iter().enumerate() {
        let title = entry
            .title
            .as_ref()
            .map(|t| html_to_text(&t.content))
            .unwrap_or_default();
        let url = pick_link(&entry.links).unwrap_or_default();
        if title.is_empty() && url.is_empty() {
            continue;
        }
        let summary_html = entry
            .summary
            .as_ref()
            .map(|t| t.content.as_str())
            .filter(|s| !s.trim().is_empty())
            .or_else(|| entry.content.as_ref().and_then(|c| c.body.as_deref()))
            .unwrap_or_default();
        let summary = truncate_chars(html_to_text(summary_html), SUMMARY_MAX_CHARS);
        // An untitled RSS item (allowed by RSS 2.0) still needs something a
        // reader can scan: the start of its text, else its address.
        let title = if title.is_empty() {
            let from_summary = truncate_chars(summary.clone(), 120);
            if from_summary.is_empty() {
                url.clone()
            } else {
                from_summary
            }
        } else {
            title
        };
        let source = sources_per_item
            .as_ref()
            .and_then(|sources| sources.get(index).cloned().flatten())
            .or_else(|| feed_title.clone())
            .unwrap_or_else(|| fallback_source.to_string());
        let guid = Some(entry.id.as_str()).filter(|g| !g.trim().is_empty());
        let link = Some(url.as_str()).filter(|l| !l.is_empty());
        let id = item_id(&dedup_key(guid, link, &title));
        let sentiment = sentiment::analyze(&format!("{title}\n{summary}"));
        items.push(NewsItem {
            id,
            title,
            summary,
            url,
            source,
            published_at: entry.published.or(entry.updated).unwrap_or(now),
            symbols: Vec::new(),
            sentiment,
        });
    }
    Ok(items)
}

/// The de-duplication key of a story: its guid, else its link, else its
/// title, normalised so trivial variations of one story agree:
///
/// - a guid or link that is an http(s) URL becomes `url:<host/path>` with the
///   scheme dropped (http and https copies are one story), the host
///   lower-cased, the `#fragment` and trailing `/` removed; RSS permalink
///   guids are the item's link, so a feed with guids and a feed without them
///   still agree on the key;
/// - any other guid (Atom `urn:`/`tag:` ids, opaque strings) is `id:<guid>`,
///   kept exactly (guids are opaque and case-sensitive);
/// - a title is `title:<lower-cased, whitespace-collapsed title>`.
///
/// Blank guids and links count as missing. Opaque guids are trusted to be
/// globally unique, as RSS and Atom ask of them.
pub fn dedup_key(guid: Option<&str>, link: Option<&str>, title: &str) -> String {
    if let Some(guid) = guid.map(str::trim).filter(|g| !g.is_empty()) {
        return match normalize_http_url(guid) {
            Some(url) => format!("url:{url}"),
            None => format!("id:{guid}"),
        };
    }
    if let Some(link) = link.map(str::trim).filter(|l| !l.is_empty()) {
        return match normalize_http_url(link) {
            Some(url) => format!("url:{url}"),
            // Non-http links (relative, ftp, ...) are kept as given.
            None => format!("url:{link}"),
        };
    }
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    format!("title:{title}")
}

/// [`NewsItem::id`] for a de-dup key.
pub fn item_id(dedup_key: &str) -> String {
    let mut id = hex::encode(Sha256::digest(dedup_key.as_bytes()));
    id.truncate(ID_HEX_LEN);
    id
}

/// Drops items whose id was already seen, keeping the first occurrence and
/// the order of the rest.
pub fn dedup(items: Vec<NewsItem>) -> Vec<NewsItem> {
    let mut seen = HashSet::with_capacity(items.len());
    items.into_iter().filter(|item| seen.insert(item.id.clone())).collect()
}

/// Sorts newest first; ties break on id so the order is deterministic.
pub fn sort_newest_first(items: &mut [NewsItem]) {
    items.sort_by(|a, b| b.published_at.cmp(&a.published_at).then_with(|| a.id.cmp(&b.id)));
}

/// Fills each item's `symbols` from its title and summary.
pub fn tag_items(items: &mut [NewsItem], index: &SymbolIndex) {
    for item in items {
        item.symbols = index.tag(&format!("{}\n{}", item.title, item.summary));
    }
}

/// The entry's page: the alternate link (Atom `rel="alternate"` or an RSS
/// `<link>`, which has no rel), else whatever link comes first.
fn pick_link(links: &[feed_rs::model::Link]) -> Option<String> {
    links
        .iter()
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or_else(|| links.first())
        .map(|l| l.href.trim().to_string())
        .filter(|href| !href.is_empty())
}

/// `host/path?query` for an http(s) URL (see [`dedup_key`]), `None` for
/// anything else.
fn normalize_http_url(raw: &str) -> Option<String> {
    let lower_prefix = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let rest = if lower_prefix.starts_with("https://") {
        raw.get(8..)?
    } else if lower_prefix.starts_with("http://") {
        raw.get(7..)?
    } else {
        return None;
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (host, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if host.is_empty() {
        return None;
    }
    let path = path.trim_end_matches('/');
    Some(format!("{}{path}", host.to_ascii_lowercase()))
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `<source>` of each `<item>`/`<entry>`, in document order: the
/// element's own text (RSS 2.0), else the text of its `<title>` child (an
/// Atom source is a copy of the original feed's metadata). `None` when the
/// XML is unreadable, so the caller falls back to the feed title.
fn item_sources(bytes: &[u8]) -> Option<Vec<Option<String>>> {
    use quick_xml::events::Event;

    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut sources = Vec::new();
    // Depths of the open item, its <source> and the source's <title>.
    let mut depth = 0usize;
    let mut item_depth: Option<usize> = None;
    let mut source_depth: Option<usize> = None;
    let mut title_depth: Option<usize> = None;
    let mut current: Option<String> = None;
    let mut own_text = String::new();
    let mut title_text = String::new();

    loop {
        let event = reader.read_event_into(&mut buf).ok()?;
        // Which buffer, if any, the text of this event belongs to.
        let target = if source_depth.is_some() && source_depth == Some(depth) {
            Some(&mut own_text)
        } else if title_depth.is_some() && title_depth == Some(depth) {
            Some(&mut title_text)
        } else {
            None
        };
        match event {
            Event::Start(ref e) => {
                depth += 1;
                let name = e.local_name();
                let name = name.as_ref();
                match (item_depth, source_depth) {
                    (None, _) if name == b"item" || name == b"entry" => {
                        item_depth = Some(depth);
                        current = None;
                    }
                    (Some(item), None) if depth == item + 1 && name == b"source" => {
                        source_depth = Some(depth);
                        own_text.clear();
                        title_text.clear();
                    }
                    (Some(_), Some(source)) if depth == source + 1 && name == b"title" => title_depth = Some(depth),
                    _ => {}
                }
            }
            Event::Empty(ref e) => {
                let name = e.local_name();
                if item_depth.is_none() && (name.as_ref() == b"item" || name.as_ref() == b"entry") {
                    sources.push(None);
                }
            }
            Event::End(_) => {
                if title_depth == Some(depth) {
                    title_depth = None;
                }
                if source_depth == Some(depth) {
                    source_depth = None;
                    let own = html_to_text(&own_text);
                    let title = html_to_text(&title_text);
                    current = [own, title].into_iter().find(|s| !s.is_empty());
                }
                if item_depth == Some(depth) {
                    item_depth = None;
                    sources.push(current.take());
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(ref t) => {
                if let Some(target) = target {
                    target.push_str(&t.decode().ok()?);
                }
            }
            Event::CData(ref t) => {
                if let Some(target) = target {
                    target.push_str(&t.decode().ok()?);
                }
            }
            Event::GeneralRef(ref r) => {
                if let Some(target) = target {
                    if let Some(ch) = r.resolve_char_ref().ok()? {
                        target.push(ch);
                    } else {
                        let name = r.decode().ok()?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(resolved) => target.push_str(resolved),
                            None => {
                                target.push('&');
                                target.push_str(&name);
                                target.push(';');
                            }
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Some(sources)
}

/// Plain text from an HTML (or plain) fragment: tags and comments removed
/// (`<script>`/`<style>` with their content), common entities decoded,
/// whitespace collapsed to single spaces.
///
/// A `<` only opens a tag when a letter, `/`, `!` or `?` follows, so plain
/// text such as "P/E < 10" survives.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('<') {
            match skip_tag(rest) {
                Some((after, separates)) => {
                    if separates {
                        out.push(' ');
                    }
                    rest = after;
                }
                None => {
                    out.push('<');
                    rest = &rest[1..];
                }
            }
        } else {
            match decode_entity(rest) {
                Some((ch, after)) => {
                    out.push(ch);
                    rest = after;
                }
                None => {
                    out.push('&');
                    rest = &rest[1..];
                }
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Skips the tag (or comment) at the start of `s`; returns the remaining text
/// and whether the tag separates words (block-level tags and `<br>` do, inline
/// ones such as `<b>` do not). `None` when `s` does not start a tag.
fn skip_tag(s: &str) -> Option<(&str, bool)> {
    let body = s.strip_prefix('<')?;
    if let Some(comment) = body.strip_prefix("!--") {
        let end = comment.find("-->").map_or(comment.len(), |e| e + 3);
        return Some((&comment[end..], true));
    }
    let first = body.chars().next()?;
    if !(first.is_ascii_alphabetic() || matches!(first, '/' | '!' | '?')) {
        return None;
    }
    // No closing '>' means this was not a tag after all ("a <b" in text).
    let close = body.find('>')?;
    let name: String = body
        .trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let after = &body[close + 1..];
    let is_closing = first == '/';
    if !is_closing && (name == "script" || name == "style") {
        // Their content is code, not text: skip to after the closing tag.
        let lower = after.to_ascii_lowercase();
        let end_tag = format!("</{name}");
        let after = match lower.find(&end_tag) {
            Some(at) => after[at..].find('>').map_or("", |gt| &after[at + gt + 1..]),
            None => "",
        };
        return Some((after, true));
    }
    #[rustfmt::skip]
    const INLINE: &[&str] = &[
        "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd", "mark", "q", "s",
        "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var",
    ];
    Some((after, !INLINE.contains(&name.as_str())))
}

/// Decodes the entity at the start of `s` (`&amp;`, `&#39;`, `&#x2019;`, a
/// few typographic names); `None` for anything else, which is kept as text.
fn decode_entity(s: &str) -> Option<(char, &str)> {
    let body = s.strip_prefix('&')?;
    // Entity names are short; a far-away ';' belongs to something else.
    let (semi, _) = body.char_indices().take(12).find(|&(_, c)| c == ';')?;
    let name = &body[..semi];
    let ch = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        char::from_u32(code)?
    } else {
        match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "ndash" => '\u{2013}',
            "mdash" => '\u{2014}',
            "lsquo" => '\u{2018}',
            "rsquo" => '\u{2019}',
            "ldquo" => '\u{201C}',
            "rdquo" => '\u{201D}',
            "hellip" => '\u{2026}',
            "copy" => '\u{A9}',
            "reg" => '\u{AE}',
            "trade" => '\u{2122}',
            "euro" => '\u{20AC}',
            "pound" => '\u{A3}',
            "yen" => '\u{A5}',
            "cent" => '\u{A2}',
            _ => return None,
        }
    };
    Some((ch, &body[semi + 1..]))
}

/// At most `max` characters of `text` (never splitting a character), with
/// trailing whitespace removed after a cut.
fn truncate_chars(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        let kept = text.trim_end().len();
        text.truncate(kept);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};

    fn bundled() -> Vec<NewsItem> {
        parse_feed(BUNDLED_FRB_FEED, "fallback").unwrap()
    }

    #[test]
    fn bundled_rss_parses_all_items_newest_first() {
        let mut items = bundled();
        assert_eq!(items.len(), 503);
        sort_newest_first(&mut items);
        let first = &items[0];
        assert_eq!(
            first.title,
            "Minutes of the Board's discount rates meeting from January 27, 2014"
        );
        assert_eq!(
            first.published_at.date_naive(),
            NaiveDate::from_ymd_opt(2014, 2, 25).unwrap()
        );
        assert_eq!(
            first.url,
            "http://www.federalreserve.gov/newsevents/press/monetary/20140225a.htm"
        );
        assert_eq!(
            first.summary,
            "The minutes are attached. For media inquiries, call 202-452-2955. Attachment (10 KB PDF)"
        );
        // The item's own <source> wins over the feed title.
        assert_eq!(first.source, BUNDLED_FRB_SOURCE);
        assert!(items.windows(2).all(|w| w[0].published_at >= w[1].published_at));
        assert_eq!(items.last().unwrap().published_at.year(), 1996);
    }

    #[test]
    fn bundled_rss_items_are_well_formed() {
        let items = bundled();
        let ids: HashSet<&str> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), 503, "guids are distinct, so ids are");
        for item in &items {
            assert_eq!(item.id.len(), ID_HEX_LEN);
            assert!(item.id.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(!item.title.is_empty());
            // All on federalreserve.gov but one (a Richmond Fed release).
            assert!(item.url.starts_with("http://www."), "{}", item.url);
            assert!(item.summary.chars().count() <= SUMMARY_MAX_CHARS);
            assert!(!item.summary.contains("&amp;"), "entities decoded: {}", item.summary);
            assert!((-1.0..=1.0).contains(&item.sentiment.score));
            assert!(item.symbols.is_empty());
        }
        // Parsing is deterministic: the same bytes give the same ids.
        assert_eq!(items, bundled());
        assert_eq!(dedup(items.clone()).len(), 503);
        let mut twice = items.clone();
        twice.extend(items);
        assert_eq!(dedup(twice).len(), 503);
    }

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Example Markets</title>
  <id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>
  <updated>2024-03-02T10:00:00Z</updated>
  <entry>
    <title type="html">Apple &lt;b&gt;beats&lt;/b&gt; estimates</title>
    <link rel="alternate" href="https://example.com/apple-beats"/>
    <link rel="enclosure" href="https://example.com/apple.mp3"/>
    <id>tag:example.com,2024:apple-beats</id>
    <updated>2024-03-02T09:30:00Z</updated>
    <summary type="html">&lt;p&gt;Strong iPhone sales &amp;amp; great   services growth.&lt;/p&gt;</summary>
    <source><title>Wire Service</title></source>
  </entry>
  <entry>
    <title>Microsoft is flat</title>
    <link href="https://example.com/msft-flat"/>
    <id>tag:example.com,2024:msft-flat</id>
    <published>2024-03-01T08:00:00Z</published>
    <updated>2024-03-02T08:00:00Z</updated>
    <content type="html">&lt;div&gt;Shares were unchanged.&lt;/div&gt;</content>
  </entry>
  <entry>
    <id>tag:example.com,2024:nothing</id>
    <updated>2024-03-02T07:00:00Z</updated>
    <summary>An entry with neither title nor link is skipped.</summary>
  </entry>
</feed>"#;

    #[test]
    fn atom_feed_parses() {
        let items = parse_feed(ATOM.as_bytes(), "fallback").unwrap();
        assert_eq!(items.len(), 2);
        let apple = &items[0];
        assert_eq!(apple.title, "Apple beats estimates");
        assert_eq!(apple.url, "https://example.com/apple-beats");
        assert_eq!(apple.summary, "Strong iPhone sales & great services growth.");
        assert_eq!(apple.source, "Wire Service");
        assert_eq!(apple.published_at.to_rfc3339(), "2024-03-02T09:30:00+00:00");
        assert_eq!(
            apple.id,
            item_id(&dedup_key(Some("tag:example.com,2024:apple-beats"), None, ""))
        );
        assert_eq!(apple.sentiment.label, "positive");
        let msft = &items[1];
        assert_eq!(msft.summary, "Shares were unchanged.");
        assert_eq!(msft.source, "Example Markets", "no item source: the feed title");
        assert_eq!(
            msft.published_at.to_rfc3339(),
            "2024-03-01T08:00:00+00:00",
            "published beats updated"
        );
    }

    #[test]
    fn rss_fallbacks_source_dates_and_missing_guid() {
        let rss = r#"<rss version="2.0"><channel>
            <item><title>No date, no guid</title><link>https://Example.com/a/#top</link>
              <description><![CDATA[<p>Line one<br/>line two</p><script>var x = 1;</script>]]></description></item>
            <item><title>Bad date</title><pubDate>not a date</pubDate>
              <description>P/E &lt; 10 looks cheap</description></item>
            <item><description>untitled but linked</description><link>http://example.com/u</link></item>
        </channel></rss>"#;
        let before = Utc::now();
        let items = parse_feed(rss.as_bytes(), "  My Feed ").unwrap();
        assert_eq!(items.len(), 3);
        assert!(
            items.iter().all(|i| i.source == "My Feed"),
            "no item source, no feed title"
        );
        assert!(items.iter().all(|i| i.published_at >= before), "no usable date: now");
        assert_eq!(items[0].summary, "Line one line two");
        assert_eq!(items[0].id, item_id("url:example.com/a"));
        assert_eq!(items[1].summary, "P/E < 10 looks cheap");
        assert_eq!(items[1].id, item_id("title:bad date"));
        assert_eq!(items[1].url, "");
        assert_eq!(items[2].title, "untitled but linked");
    }

    #[test]
    fn garbage_is_a_parse_error() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"   ",
            b"\x00\xff\xfe garbage \x80",
            b"hello, world",
            b"<html><body><p>Not a feed</p></body></html>",
            b"<?xml version=\"1.0\"?><note><to>x</to></note>",
            b"{ this is not json",
            b"<<<>>>",
        ];
        for input in inputs {
            assert!(
                matches!(parse_feed(input, "x"), Err(NewsError::Parse(_))),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // Truncated or mangled feeds must not panic either (Ok or Err is fine).
        for cut in [10, 100, 1000, 5000] {
            let _ = parse_feed(&BUNDLED_FRB_FEED[..cut], "x");
        }
    }

    #[test]
    fn dedup_keys_are_stable_and_distinct() {
        let a = dedup_key(Some("guid-1"), Some("https://x.com/1"), "Title");
        assert_eq!(a, dedup_key(Some("guid-1"), Some("https://x.com/1"), "Title"));
        assert_eq!(a, "id:guid-1");
        assert_ne!(a, dedup_key(Some("guid-2"), Some("https://x.com/1"), "Title"));
        assert_ne!(item_id(&a), item_id(&dedup_key(Some("guid-2"), None, "Title")));
        // guid beats link beats title; blanks count as missing.
        assert_eq!(dedup_key(Some("  "), Some("https://x.com/1"), "T"), "url:x.com/1");
        assert_eq!(dedup_key(None, None, "  Fed   Holds Rates "), "title:fed holds rates");
        assert_eq!(
            dedup_key(None, Some(""), "Fed holds rates"),
            dedup_key(None, None, "FED HOLDS RATES")
        );
        // A permalink guid and the same link agree; scheme, host case,
        // fragment and trailing slash do not matter.
        assert_eq!(
            dedup_key(Some("http://WWW.Example.com/news/1/"), None, "a"),
            dedup_key(None, Some("https://www.example.com/news/1#comments"), "b")
        );
        assert_ne!(
            dedup_key(None, Some("https://x.com/News/1"), ""),
            dedup_key(None, Some("https://x.com/news/1"), "")
        );
        let id = item_id(&a);
        assert_eq!(id.len(), ID_HEX_LEN);
        assert_eq!(id, item_id("id:guid-1"));
    }

    #[test]
    fn html_to_text_and_truncation() {
        assert_eq!(
            html_to_text("<p>A&amp;B</p><p>C &#8217; &#x41; &bogus; & done</p>"),
            "A&B C \u{2019} A &bogus; & done"
        );
        assert_eq!(
            html_to_text("<!-- hidden --><b>bold</b>ly <style>p{}</style>go"),
            "boldly go"
        );
        assert_eq!(html_to_text("a <b and no close"), "a <b and no close");
        let long = "é".repeat(600);
        let cut = truncate_chars(long, SUMMARY_MAX_CHARS);
        assert_eq!(cut.chars().count(), SUMMARY_MAX_CHARS);
        assert_eq!(truncate_chars("short".into(), 10), "short");
    }

    #[test]
    fn items_get_tagged() {
        let index = SymbolIndex::new(&[("AAPL".to_string(), "Apple Inc.".to_string())]);
        let mut items = parse_feed(ATOM.as_bytes(), "x").unwrap();
        tag_items(&mut items, &index);
        assert_eq!(items[0].symbols, ["AAPL"]);
        assert!(items[1].symbols.is_empty());
    }
}
