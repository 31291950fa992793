//! Daily price history: the data set bundled in the binary, series imported
//! with `fortfolio prices import`, and the CSV reader both use.
//!
//! The [`PriceBook`] holds every series in memory (the bundled set is about
//! 115k candles); imported series are also kept in the store so they survive
//! restarts. Each symbol has a version number that changes whenever its
//! series does, so caches of derived results (models) know when to retrain.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::Candle;

pub use crate::domain::market::Series;

/// The bundled files, embedded at compile time.
const BUNDLED: &[(&str, &str)] = &[
    ("AAPL", include_str!("../../assets/prices/AAPL.csv")),
    ("AMZN", include_str!("../../assets/prices/AMZN.csv")),
    ("DIA", include_str!("../../assets/prices/DIA.csv")),
    ("EEM", include_str!("../../assets/prices/EEM.csv")),
    ("GLD", include_str!("../../assets/prices/GLD.csv")),
    ("GOOGL", include_str!("../../assets/prices/GOOGL.csv")),
    ("IWM", include_str!("../../assets/prices/IWM.csv")),
    ("JNJ", include_str!("../../assets/prices/JNJ.csv")),
    ("JPM", include_str!("../../assets/prices/JPM.csv")),
    ("KO", include_str!("../../assets/prices/KO.csv")),
    ("MSFT", include_str!("../../assets/prices/MSFT.csv")),
    ("NVDA", include_str!("../../assets/prices/NVDA.csv")),
    ("QQQ", include_str!("../../assets/prices/QQQ.csv")),
    ("SLV", include_str!("../../assets/prices/SLV.csv")),
    ("SPY", include_str!("../../assets/prices/SPY.csv")),
    ("TLT", include_str!("../../assets/prices/TLT.csv")),
    ("TSLA", include_str!("../../assets/prices/TSLA.csv")),
    ("USO", include_str!("../../assets/prices/USO.csv")),
    ("XLF", include_str!("../../assets/prices/XLF.csv")),
    ("XOM", include_str!("../../assets/prices/XOM.csv")),
    ("WTI", include_str!("../../assets/prices/WTI_EIA_daily.csv")),
    ("BRENT", include_str!("../../assets/prices/BRENT_EIA_daily.csv")),
];

const SYMBOLS_CSV: &str = include_str!("../../assets/prices/symbols.csv");

/// Names and currencies from `symbols.csv`.
fn bundled_names() -> HashMap<String, (String, String)> {
    let mut out = HashMap::new();
    for line in SYMBOLS_CSV.lines().skip(1) {
        let fields = split_csv_line(line);
        if fields.len() >= 4 {
            out.insert(fields[0].clone(), (fields[1].clone(), fields[3].clone()));
        }
    }
    out
}

/// Parsed once per process: every server (and every test server) shares it.
static BUNDLED_SERIES: LazyLock<Vec<Arc<Series>>> = LazyLock::new(|| {
    let names = bundled_names();
    BUNDLED
        .iter()
        .filter_map(|(symbol, text)| {
            let parsed = parse_csv(text).ok()?;
            if !parsed.errors.is_empty() {
                tracing::warn!(
                    symbol,
                    bad_rows = parsed.errors.len(),
                    "bundled price file has bad rows"
                );
            }
            let (name, currency) = names
                .get(*symbol)
                .cloned()
                .unwrap_or_else(|| (symbol.to_string(), "USD".into()));
            Some(Arc::new(Series {
                symbol: symbol.to_string(),
                name,
                currency,
                source: "bundled".into(),
                candles: merge_candles(Vec::new(), parsed.rows.into_iter().map(|(_, c)| c).collect()),
            }))
        })
        .collect()
});

/// Every series the server knows.
/// The book's series, locked for a change.
type SeriesGuard<'a> = std::sync::RwLockWriteGuard<'a, HashMap<String, Arc<Series>>>;

pub struct PriceBook {
    series: RwLock<HashMap<String, Arc<Series>>>,
    versions: RwLock<HashMap<String, u64>>,
    clock: AtomicU64,
}

impl PriceBook {
    /// The bundled data set.
    pub fn bundled() -> Self {
        let series = BUNDLED_SERIES.iter().map(|s| (s.symbol.clone(), s.clone())).collect();
        Self {
            series: RwLock::new(series),
            versions: RwLock::new(HashMap::new()),
            clock: AtomicU64::new(1),
        }
    }

    pub fn get(&self, symbol: &str) -> Option<Arc<Series>> {
        self.series.read().ok()?.get(symbol).cloned()
    }

    /// All series, by symbol.
    pub fn list(&self) -> Vec<Arc<Series>> {
        let mut all: Vec<Arc<Series>> = self
            .series
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        all
    }

    /// Changes whenever any series changes.
    pub fn generation(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Changes whenever `symbol`'s series changes.
    pub fn version(&self, symbol: &str) -> u64 {
        self.versions
            .read()
            .ok()
            .and_then(|v| v.get(symbol).copied())
            .unwrap_or(0)
    }

    /// Takes a stored series as it is when it differs from the book's (an
    /// import made by another instance); true when it did.
    pub fn adopt(&self, series: Series) -> bool {
        let map = self.series_mut();
        if map
            .get(&series.symbol)
            .is_some_and(|old| old.name == series.name && old.candles == series.candles)
        {
            return false;
        }
        self.publish(map, Arc::new(series));
        true
    }

    fn series_mut(&self) -> SeriesGuard<'_> {
        self.series.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Puts a series in the book and gives its symbol a new version.
    fn publish(&self, mut map: SeriesGuard<'_>, series: Arc<Series>) {
        let symbol = series.symbol.clone();
        map.insert(symbol.clone(), series);
        drop(map);
        let v = self.clock.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut versions) = self.versions.write() {
            versions.insert(symbol, v);
        }
    }

    /// Merges candles into a symbol's series (new dates added, same dates
    /// replaced); creates the series if needed. Returns the new series.
    pub fn merge(&self, symbol: &str, name: Option<&str>, candles: Vec<Candle>) -> Arc<Series> {
        let map = self.series_mut();
        let existing = map.get(symbol).cloned();
        let series = Arc::new(match existing {
            Some(old) => Series {
                symbol: old.symbol.clone(),
                name: name.map(str::to_string).unwrap_or_else(|| old.name.clone()),
                currency: old.currency.clone(),
                source: if old.source.contains("import") {
                    old.source.clone()
                } else {
                    format!("{}+import", old.source)
                },
                candles: merge_candles(old.candles.clone(), candles),
            },
            None => Series {
                symbol: symbol.to_string(),
                name: name.unwrap_or(symbol).to_string(),
                currency: "USD".into(),
                source: "import".into(),
                candles: merge_candles(Vec::new(), candles),
            },
        });
        self.publish(map, series.clone());
        series
    }
}

/// Sorted by date, later entries replacing earlier ones of the same date.
pub fn merge_candles(base: Vec<Candle>, new: Vec<Candle>) -> Vec<Candle> {
    let mut by_date: std::collections::BTreeMap<NaiveDate, Candle> = base.into_iter().map(|c| (c.date, c)).collect();
    for c in new {
        by_date.insert(c.date, c);
    }
    by_date.into_values().collect()
}

/// The result of reading a price CSV: good rows (with the symbol column's
/// value when the file has one) and bad rows with their line numbers.
#[derive(Debug, Default)]
pub struct ParsedCsv {
    pub rows: Vec<(Option<String>, Candle)>,
    pub errors: Vec<(usize, String)>,
}

/// Splits one CSV line, honouring double quotes.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|f| f.trim().to_string()).collect()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let s = s.split(['T', ' ']).next().unwrap_or(s);
    ["%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
}

fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    s.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(s).ok())
}

/// Reads a price CSV with a header row. Recognised columns (any case):
/// `date`; `open`, `high`, `low`, `close` (or `adj close` when there is no
/// `close`, or a single `price`); `volume`; optional `symbol`/`ticker`.
/// Yahoo, Stooq and the bundled Kaggle/EIA layouts all fit. A file without a
/// date or close/price column is refused; a bad row is reported with its
/// 1-based line number and skipped.
pub fn parse_csv(text: &str) -> Result<ParsedCsv, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("the file is empty")?;
    let cols: Vec<String> = split_csv_line(header.trim_start_matches('\u{feff}'))
        .iter()
        .map(|h| h.to_ascii_lowercase().replace(['<', '>'], ""))
        .collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let date = find(&["date", "timestamp", "day"]).ok_or("no date column in the header")?;
    let close = find(&["close", "adj close", "adj_close", "price", "value"])
        .ok_or("no close (or price) column in the header")?;
    let open = find(&["open"]);
    let high = find(&["high"]);
    let low = find(&["low"]);
    let volume = find(&["volume", "vol"]);
    let symbol = find(&["symbol", "ticker"]);

    let mut out = ParsedCsv::default();
    for (i, line) in lines {
        let lineno = i + 1;
        let f = split_csv_line(line);
        let field = |idx: usize| f.get(idx).map(String::as_str).unwrap_or("");
        let Some(d) = parse_date(field(date)) else {
            out.errors.push((lineno, format!("bad date `{}`", field(date))));
            continue;
        };
        let Some(c) = parse_decimal(field(close)) else {
            out.errors.push((lineno, format!("bad close `{}`", field(close))));
            continue;
        };
        let opt = |idx: Option<usize>, name: &str| -> Result<Decimal, String> {
            match idx {
                None => Ok(c),
                Some(i) if field(i).is_empty() => Ok(c),
                Some(i) => parse_decimal(field(i)).ok_or_else(|| format!("bad {name} `{}`", field(i))),
            }
        };
        let candle = (|| -> Result<Candle, String> {
            let (o, h, l) = (opt(open, "open")?, opt(high, "high")?, opt(low, "low")?);
            let v = match volume {
                Some(i) if !field(i).is_empty() => {
                    parse_decimal(field(i)).ok_or_else(|| format!("bad volume `{}`", field(i)))?
                }
                _ => Decimal::ZERO,
            };
            if h < l {
                return Err(format!("high {h} is below low {l}"));
            }
            if v.is_sign_negative() {
                return Err(format!("negative volume {v}"));
            }
            Ok(Candle {
                date: d,
                open: o,
                high: h,
                low: l,
                close: c,
                volume: v,
            })
        })();
        match candle {
            Ok(candle) => {
                let sym = symbol.map(|i| field(i).to_string()).filter(|s| !s.is_empty());
                out.rows.push((sym, candle));
            }
            Err(e) => out.errors.push((lineno, e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_set_loads_every_symbol() {
        let book = PriceBook::bundled();
        assert_eq!(book.list().len(), 22);
        let spy = book.get("SPY").unwrap();
        assert_eq!(spy.name, "SPDR S&P 500 ETF Trust");
        assert_eq!(spy.candles.len(), 3201);
        assert_eq!(spy.last().unwrap().date, NaiveDate::from_ymd_opt(2017, 11, 10).unwrap());
        let wti = book.get("WTI").unwrap();
        assert!(
            wti.candles.iter().any(|c| c.close.is_sign_negative()),
            "the real 2020 negative price"
        );
    }

    #[test]
    fn reads_yahoo_stooq_and_reports_bad_lines() {
        let yahoo = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,11,9,10.5,10.4,100\nnot-a-date,1,1,1,1,1,1\n2024-01-03,10,9,11,10,10,5\n2024-01-04,10,11,9,10.25,10.2,200\n";
        let p = parse_csv(yahoo).unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].1.close, Decimal::new(105, 1), "close, not adj close");
        assert_eq!(p.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![3, 4]);
        let stooq = "<TICKER>,<DATE>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>\nabc,20240102,1,2,0.5,1.5,10\n";
        let p = parse_csv(stooq).unwrap();
        assert_eq!(p.rows[0].0.as_deref(), Some("abc"));
        assert_eq!(p.rows[0].1.volume, Decimal::from(10));
        assert!(parse_csv("foo,bar\n1,2\n").is_err());
    }

    #[test]
    fn merge_replaces_same_dates_and_bumps_version() {
        let book = PriceBook::bundled();
        let v0 = book.version("ZZZ");
        let c = |d: u32, close: i64| Candle {
            date: NaiveDate::from_ymd_opt(2024, 1, d).unwrap(),
            open: close.into(),
            high: close.into(),
            low: close.into(),
            close: close.into(),
            volume: Decimal::ZERO,
        };
        book.merge("ZZZ", None, vec![c(2, 1), c(1, 1)]);
        let s = book.merge("ZZZ", Some("Zed"), vec![c(2, 5), c(3, 6)]);
        assert_eq!(s.candles.len(), 3);
        assert_eq!(s.candles[1].close, Decimal::from(5));
        assert_eq!(s.name, "Zed");
        assert!(book.version("ZZZ") > v0);
    }
}
