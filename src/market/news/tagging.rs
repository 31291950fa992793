//! Symbol tagging: which of the user's instruments a news story mentions.
//! This is the "tagging" part of the news design; [`SymbolIndex`] is built
//! once from the symbol list (symbol, company or fund name) and then tags
//! each item's title + summary.
//!
//! A symbol is tagged when the text mentions either
//!
//! 1. **its ticker**, matched in the original text as a whole word:
//!    - a cashtag (`$AAPL`, `$ko`, `$F`) always counts, whatever its case or
//!      length;
//!    - a bare ticker (`AAPL`, `KO`) counts only when it is written in
//!      UPPERCASE exactly as the symbol (so "Ko" or "ko" do not), is at least
//!      2 characters long (so "A", "F", "T" in prose do not) and is not in
//!      [`CAPS_STOPLIST`], a short list of words and acronyms that news
//!      writes in capitals (`IT`, `ALL`, `ON`, `NOW`, `CEO`, `USA`, `FED`,
//!      ...). "KO" is not on the list, so it counts;
//!    - word boundaries are anything but letters, digits, `.`, `-` and `_`;
//!      a run such as `AAPL-led` or `BRK.B` is tried whole and then by its
//!      `.`/`-` parts;
//! 2. **its company name**, case-insensitively as a whole-word phrase (see
//!    [`name_keys`]): "Apple", "Microsoft", "Exxon", "JPMorgan Chase",
//!    "Coca-Cola" (also "Coca Cola"), "Johnson & Johnson" (also "Johnson and
//!    Johnson"), plus a few well-known aliases ("Google" for GOOGL/GOOG,
//!    see [`builtin_aliases`]) and any added with
//!    [`SymbolIndex::add_alias`].
//!
//! Funds are tagged by ticker only. A fund's name describes what it holds
//! ("SPDR Gold Shares", "iShares Silver Trust", "United States Oil Fund",
//! "SPDR S&P 500 ETF Trust"), and a story about gold, oil or the S&P 500
//! index is not a story about the fund, so no name keys are derived for
//! names containing a fund marker (ETF, Fund, Trust, SPDR, iShares, ...).
//!
//! Known limits: an all-caps headline can still hit a ticker that is also a
//! word ("DIA", "USO") unless the word is on the stoplist; a company name
//! that is also an everyday word ("Apple", "Amazon") tags stories about the
//! fruit or the river.

use std::collections::{BTreeSet, HashMap};

/// Uppercase words that are never read as bare tickers (a cashtag still
/// works): English words and market acronyms that news writes in capitals.
#[rustfmt::skip]
pub const CAPS_STOPLIST: &[&str] = &[
    "AI", "ALL", "AM", "AN", "AND", "ANY", "ARE", "AS", "AT", "ATM", "BE", "BIG", "BUT", "BY", "CAN", "CEO", "CFO",
    "COO", "CPI", "CTO", "DO", "ECB", "EPS", "ET", "ETF", "EU", "EV", "FDA", "FED", "FOMC", "FOR", "FX", "GDP", "GO",
    "HAS", "HE", "IF", "IMF", "IN", "INC", "IPO", "IS", "IT", "LLC", "ME", "MY", "NEW", "NO", "NOT", "NOW", "NYSE",
    "OF", "OK", "ON", "ONE", "OPEC", "OR", "OUT", "PC", "PE", "PM", "PPI", "SEC", "SEE", "SO", "THE", "TO", "TV", "TWO",
    "UK", "UN", "UP", "US", "USA", "USD", "WAS", "WE", "WHO", "YOU",
];

/// Words dropped from the edges of a name before it becomes a match key:
/// legal forms and fund-family brands (lower case, without trailing dots).
/// Share classes ("Class A") are removed separately.
#[rustfmt::skip]
const GENERIC_NAME_WORDS: &[&str] = &[
    "&", "ab", "adr", "ads", "ag", "and", "class", "co", "companies", "company", "corp", "corporation", "etf", "fund",
    "group", "holding", "holdings", "inc", "incorporated", "invesco", "ishares", "limited", "llc", "lp", "ltd", "n.v",
    "nv", "plc", "s.a", "sa", "se", "shares", "spdr", "the", "trust",
];

/// Words that mark a name as a fund's (see the module docs): such names get
/// no name keys.
#[rustfmt::skip]
const FUND_MARKERS: &[&str] = &[
    "etf", "etn", "etns", "etfs", "fund", "funds", "ishares", "invesco", "proshares", "spdr", "trust", "vanguard",
];

/// Common words that may not stand alone as a name key: a two-word name's
/// first word ("United ...", "General ...") or a one-word name ("Gold").
#[rustfmt::skip]
const COMMON_NAME_WORDS: &[&str] = &[
    "american", "bank", "capital", "china", "crude", "daily", "digital", "dollar", "energy", "euro", "financial",
    "first", "general", "global", "gold", "health", "international", "market", "national", "new", "oil", "power",
    "silver", "united", "world",
];

/// Extra names for well-known companies that their legal name does not
/// contain. Only applied to symbols present in the index.
pub fn builtin_aliases(symbol: &str) -> &'static [&'static str] {
    match symbol {
        "GOOGL" | "GOOG" => &["Google"],
        "META" => &["Facebook"],
        "XOM" => &["ExxonMobil"],
        "JPM" => &["J.P. Morgan"],
        _ => &[],
    }
}

/// Looks up tickers and company names in text; see the module docs for the
/// rules.
#[derive(Debug, Clone, Default)]
pub struct SymbolIndex {
    /// Symbols as given (trimmed); indices below point here.
    symbols: Vec<String>,
    /// Uppercased ticker → symbol index.
    tickers: HashMap<String, usize>,
    /// First token of a name key → (all tokens of the key, symbol index).
    names: HashMap<String, Vec<(Vec<String>, usize)>>,
}

impl SymbolIndex {
    /// Builds the index from `(symbol, company or fund name)` pairs.
    pub fn new(entries: &[(String, String)]) -> Self {
        let mut index = Self::default();
        for (symbol, name) in entries {
            let symbol = symbol.trim();
            if symbol.is_empty() {
                continue;
            }
            let at = index.symbols.len();
            index.symbols.push(symbol.to_string());
            index.tickers.entry(symbol.to_uppercase()).or_insert(at);
            for key in name_keys(name) {
                index.insert_name_key(&key, at);
            }
            for alias in builtin_aliases(&symbol.to_uppercase()) {
                index.insert_name_key(alias, at);
            }
        }
        index
    }

    /// Adds another name for `symbol` (matched like a company name, as a
    /// case-insensitive whole-word phrase). Returns false when the symbol is
    /// not in the index or the alias has no words.
    pub fn add_alias(&mut self, symbol: &str, alias: &str) -> bool {
        match self.tickers.get(&symbol.trim().to_uppercase()) {
            Some(&at) => self.insert_name_key(alias, at),
            None => false,
        }
    }

    /// Number of symbols indexed.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Sorted, unique symbols mentioned in `text`.
    pub fn tag(&self, text: &str) -> Vec<String> {
        let mut found = BTreeSet::new();
        for (candidate, cashtag) in ticker_candidates(text) {
            if let Some(at) = self.ticker_match(candidate, cashtag) {
                found.insert(at);
            }
        }
        let tokens = name_tokens(text);
        for (start, token) in tokens.iter().enumerate() {
            if let Some(keys) = self.names.get(token) {
                for (key, at) in keys {
                    if tokens[start..].starts_with(key) {
                        found.insert(*at);
                    }
                }
            }
        }
        let symbols: BTreeSet<&str> = found
            .into_iter()
            .filter_map(|at| self.symbols.get(at).map(String::as_str))
            .collect();
        symbols.into_iter().map(str::to_string).collect()
    }

    fn ticker_match(&self, candidate: &str, cashtag: bool) -> Option<usize> {
        if cashtag {
            // "$5" is money, not a ticker.
            if !candidate.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return None;
            }
            return self.tickers.get(&candidate.to_uppercase()).copied();
        }
        let bare_ok = candidate.len() >= 2
            && candidate.chars().any(|c| c.is_ascii_alphabetic())
            && !candidate.chars().any(|c| c.is_ascii_lowercase())
            && !CAPS_STOPLIST.contains(&candidate);
        if bare_ok {
            self.tickers.get(candidate).copied()
        } else {
            None
        }
    }

    fn insert_name_key(&mut self, key: &str, at: usize) -> bool {
        let tokens = name_tokens(key);
        let Some(first) = tokens.first().cloned() else {
            return false;
        };
        let keys = self.names.entry(first).or_default();
        if !keys.iter().any(|(existing, i)| *existing == tokens && *i == at) {
            keys.push((tokens, at));
        }
        true
    }
}

/// The name phrases that tag a company, derived from its name:
///
/// 1. funds (a word from the fund markers: ETF, Fund, Trust, SPDR, iShares,
///    Invesco, ...) get none — see the module docs;
/// 2. the name is cut at the first `(` or `,` (parentheticals and
///    descriptions), a `.com` suffix is dropped ("Amazon.com" → "Amazon"),
///    and generic words are dropped from both ends until none is left there:
///    legal forms (Inc, Corp, Corporation, Co, Company, plc, Ltd, ...), share
///    classes ("Class A"), "The", "&", Group, Holdings;
/// 3. what remains is a key if it has at most 4 words (longer ones are
///    descriptions, not names) and is not a single common word ("Gold");
/// 4. for a two-word remainder, its first word is a key too when it is
///    distinctive: at least 3 characters, not a common word ("United",
///    "General") and not followed by a connector ("Johnson & Johnson" keeps
///    only the full phrase). "Exxon Mobil" → "Exxon", "JPMorgan Chase" →
///    "JPMorgan".
///
/// Keys containing "&" also get an "and" spelling. Keys are returned lower
/// case; matching ignores case and punctuation between words, so
/// "Coca-Cola" also matches "Coca Cola".
pub fn name_keys(name: &str) -> Vec<String> {
    let head = name.split(['(', ',']).next().unwrap_or_default();
    let raw_words: Vec<&str> = head.split_whitespace().collect();
    let lower: Vec<String> = raw_words
        .iter()
        .map(|w| w.trim_end_matches('.').to_lowercase())
        .collect();
    if lower.iter().any(|w| FUND_MARKERS.contains(&w.as_str())) {
        return Vec::new();
    }

    let mut words: Vec<String> = raw_words
        .iter()
        .map(|w| {
            let w = w.trim_end_matches(['.', ';', ':']);
            let w = match w.len().checked_sub(4) {
                Some(cut) if w.get(cut..).is_some_and(|end| end.eq_ignore_ascii_case(".com")) => &w[..cut],
                _ => w,
            };
            w.to_string()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let is_generic = |w: &str| GENERIC_NAME_WORDS.contains(&w.to_lowercase().as_str());
    loop {
        let n = words.len();
        if words.last().is_some_and(|w| is_generic(w)) {
            words.pop();
        } else if n >= 2 && words[n - 2].eq_ignore_ascii_case("class") && words[n - 1].chars().count() == 1 {
            // "Class A" / "Class B" share-class suffix.
            words.truncate(n - 2);
        } else {
            break;
        }
    }
    while words.first().is_some_and(|w| is_generic(w)) {
        words.remove(0);
    }
    if words.is_empty() || words.len() > 4 {
        return Vec::new();
    }

    let mut keys = Vec::new();
    let is_common = |w: &str| COMMON_NAME_WORDS.contains(&w.to_lowercase().as_str());
    if !(words.len() == 1 && is_common(&words[0])) {
        keys.push(words.join(" ").to_lowercase());
    }
    if words.len() == 2 {
        let (first, second) = (&words[0], words[1].to_lowercase());
        let connector = matches!(second.as_str(), "&" | "and" | "of" | "de" | "the");
        if first.chars().count() >= 3 && !is_common(first) && !connector {
            keys.push(first.to_lowercase());
        }
    }
    let with_and: Vec<String> = keys
        .iter()
        .filter(|k| k.contains('&'))
        .map(|k| k.replace('&', " and ").split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    keys.extend(with_and);
    keys.retain(|k| !name_tokens(k).is_empty());
    keys.dedup();
    keys
}

/// Lower-case word tokens for name matching: runs of letters/digits, with
/// "&" as a token of its own; everything else separates.
fn name_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
            continue;
        }
        if !current.is_empty() {
            tokens.push(std::mem::take(&mut current));
        }
        if c == '&' {
            tokens.push("&".to_string());
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// Candidate tickers in the original text, each with whether it was written
/// as a cashtag (`$` right before it). A run of `[A-Za-z0-9._-]` is yielded
/// whole (edge punctuation trimmed) and, when it contains `.` or `-`, also
/// by its parts.
fn ticker_candidates(text: &str) -> Vec<(&str, bool)> {
    let is_run_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    // Byte offset where the current run starts, and the character before it.
    let mut run_start: Option<(usize, Option<char>)> = None;
    // A trailing separator closes the last run.
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        if is_run_char(c) {
            run_start.get_or_insert((i, prev));
        } else if let Some((start, before)) = run_start.take() {
            push_candidates(&text[start..i], before, &mut out);
        }
        prev = Some(c);
    }
    out
}

fn push_candidates<'t>(run: &'t str, before: Option<char>, out: &mut Vec<(&'t str, bool)>) {
    // Glued to a (non-ASCII) letter before it: the middle of a word.
    if before.is_some_and(char::is_alphanumeric) {
        return;
    }
    let trimmed = run.trim_matches(['.', '-', '_']);
    if trimmed.is_empty() {
        return;
    }
    // "$AAPL" is a cashtag; "$-AAPL" or "$.AAPL" is not.
    let cashtag = before == Some('$') && run.starts_with(|c: char| c.is_ascii_alphanumeric());
    out.push((trimmed, cashtag));
    if trimmed.contains(['.', '-']) {
        for (i, part) in trimmed.split(['.', '-']).filter(|p| !p.is_empty()).enumerate() {
            out.push((part, cashtag && i == 0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> SymbolIndex {
        let pairs = [
            ("AAPL", "Apple Inc."),
            ("MSFT", "Microsoft Corp."),
            ("AMZN", "Amazon.com Inc."),
            ("GOOGL", "Alphabet Inc. Class A"),
            ("NVDA", "NVIDIA Corp."),
            ("TSLA", "Tesla Inc."),
            ("JPM", "JPMorgan Chase & Co."),
            ("XOM", "Exxon Mobil Corp."),
            ("JNJ", "Johnson & Johnson"),
            ("KO", "Coca-Cola Co."),
            ("GLD", "SPDR Gold Shares"),
            ("SLV", "iShares Silver Trust"),
            ("USO", "United States Oil Fund"),
            ("SPY", "SPDR S&P 500 ETF Trust"),
            ("F", "Ford Motor Company"),
            ("IT", "Gartner Inc."),
            ("WTI", "Crude oil WTI Cushing OK spot price, USD/barrel"),
        ];
        SymbolIndex::new(&pairs.map(|(s, n)| (s.to_string(), n.to_string())))
    }

    fn tag(text: &str) -> Vec<String> {
        index().tag(text)
    }

    #[test]
    fn tickers_as_uppercase_whole_words() {
        assert_eq!(tag("AAPL and MSFT rallied; KO slipped"), ["AAPL", "KO", "MSFT"]);
        assert_eq!(tag("Buy $AAPL, sell $tsla."), ["AAPL", "TSLA"]);
        assert_eq!(
            tag("AAPL-led rally, (NVDA) and GOOGL's results"),
            ["AAPL", "GOOGL", "NVDA"]
        );
        // Not whole words, wrong case, or excluded.
        assert!(tag("AAPLX MSFTs xKO aapl Ko ko").is_empty());
        assert!(
            tag("IT spending rose at F-150 maker").is_empty(),
            "stoplisted / single-letter bare tickers"
        );
        assert_eq!(
            tag("Shares of $F and $IT rose"),
            ["F", "IT"],
            "cashtags bypass length and stoplist"
        );
        assert!(tag("It cost $5 and 10.5%").is_empty());
    }

    #[test]
    fn company_names_case_insensitive() {
        assert_eq!(tag("Apple unveils a new iPhone"), ["AAPL"]);
        assert_eq!(tag("microsoft and amazon cloud deal"), ["AMZN", "MSFT"]);
        assert_eq!(tag("Amazon.com's quarter"), ["AMZN"]);
        assert_eq!(tag("Exxon cuts jobs"), ["XOM"]);
        assert_eq!(tag("ExxonMobil and Exxon Mobil"), ["XOM"]);
        assert_eq!(tag("JPMorgan Chase earnings; JPMorgan's CEO"), ["JPM"]);
        assert_eq!(tag("J.P. Morgan analysts"), ["JPM"]);
        assert_eq!(tag("Coca-Cola and Coca Cola"), ["KO"]);
        assert_eq!(tag("Johnson & Johnson recalls; Johnson and Johnson"), ["JNJ"]);
        assert!(
            tag("Boris Johnson spoke").is_empty(),
            "first word of 'Johnson & Johnson' alone is not a key"
        );
        assert_eq!(tag("Nvidia chips, Tesla cars"), ["NVDA", "TSLA"]);
        assert_eq!(tag("Alphabet, the parent of Google"), ["GOOGL"]);
        assert_eq!(tag("Ford Motor recalls trucks"), ["F"]);
        // Whole words only.
        assert!(tag("Applebee's pineapple; Teslas; Microsofts").is_empty());
    }

    #[test]
    fn funds_are_not_tagged_by_generic_words() {
        assert!(tag("Gold and silver rose as oil fell; the S&P 500 hit a record").is_empty());
        assert!(tag("United States oil output and crude oil spot price").is_empty());
        assert_eq!(
            tag("GLD and SLV inflows; SPY outflows; USO"),
            ["GLD", "SLV", "SPY", "USO"]
        );
        assert_eq!(tag("WTI crude rose"), ["WTI"]);
    }

    #[test]
    fn name_keys_drop_generic_words() {
        assert_eq!(name_keys("Apple Inc."), ["apple"]);
        assert_eq!(name_keys("Alphabet Inc. Class A"), ["alphabet"]);
        assert_eq!(name_keys("JPMorgan Chase & Co."), ["jpmorgan chase", "jpmorgan"]);
        assert_eq!(name_keys("Exxon Mobil Corp."), ["exxon mobil", "exxon"]);
        assert_eq!(
            name_keys("Johnson & Johnson"),
            ["johnson & johnson", "johnson and johnson"]
        );
        assert_eq!(name_keys("Coca-Cola Co."), ["coca-cola"]);
        assert_eq!(name_keys("Amazon.com Inc."), ["amazon"]);
        assert_eq!(name_keys("The Walt Disney Company"), ["walt disney", "walt"]);
        assert_eq!(name_keys("General Electric Co."), ["general electric"]);
        assert!(name_keys("SPDR Gold Shares").is_empty());
        assert!(name_keys("Invesco QQQ Trust (Nasdaq-100)").is_empty());
        assert!(name_keys("Financial Select Sector SPDR Fund").is_empty());
        assert!(name_keys("Gold").is_empty());
        assert!(name_keys("Daily FX noon buying rates, foreign-currency units per 1 USD").is_empty());
        assert!(name_keys("").is_empty());
    }

    #[test]
    fn aliases_and_basics() {
        let mut index = index();
        assert_eq!(index.len(), 17);
        assert!(!index.is_empty());
        assert!(index.add_alias("msft", "Redmond"));
        assert!(!index.add_alias("ZZZZ", "Nothing"));
        assert!(!index.add_alias("MSFT", " -- "));
        assert_eq!(index.tag("Redmond ships Windows"), ["MSFT"]);
        assert!(SymbolIndex::new(&[]).tag("AAPL Apple").is_empty());
        assert!(index.tag("").is_empty());
        // Sorted and unique however often and however mentioned.
        assert_eq!(index.tag("TSLA Tesla $TSLA AAPL Apple"), ["AAPL", "TSLA"]);
    }
}
