//! News sentiment: a Rust re-implementation of part of VADER (Hutto &
//! Gilbert, 2014) over the bundled VADER lexicon
//! (`assets/sentiment/vader_lexicon.txt`, MIT, Copyright (c) 2016 C.J. Hutto;
//! the licence ships beside it in `VADER_LICENSE.txt`). This is the
//! "sentiment" part of the news design: every [`super::NewsItem`] gets the
//! compound score of its title + summary.
//!
//! Implemented, following vaderSentiment 3.3.2:
//! - **lexicon lookup**: each token scores its mean human valence (-4..+4);
//! - **tokenising**: split on whitespace, lower-case, strip surrounding
//!   punctuation, keep inner apostrophes ("don't"), typographic apostrophes
//!   (’) read as `'`;
//! - **booster words** ("very", "extremely", "slightly", "kinda", ...):
//!   within the 3 tokens before a sentiment word they add ±0.293 in the
//!   direction of its valence (×0.95 at distance 2, ×0.9 at distance 3) and
//!   score nothing themselves; "kind" followed by "of" scores nothing either
//!   (a hedge, not kindness), though like VADER it does not dampen;
//! - **negation**: a negator ("not", "never", "without", "isn't", any "n't"
//!   form, ... — VADER's list) in any of the 3 preceding tokens multiplies
//!   the valence by -0.74, once per negator; "never so/this good" intensifies
//!   (×1.25) instead and "without doubt" does not negate, as in VADER. As in
//!   VADER, booster and negation checks only look at preceding tokens that
//!   are not themselves lexicon words;
//! - **"no"**: "no" before a lexicon word scores nothing itself, and a word
//!   one or two tokens after "no" is negated (×-0.74) — VADER's rule;
//! - **"least"**: "least good" is negated unless it reads "at/very least";
//! - **compound**: the sum of valences normalised as `x / sqrt(x² + 15)`,
//!   clamped to [-1, 1] and rounded to 4 decimals;
//! - **labels**: compound >= 0.05 positive, <= -0.05 negative, else neutral.
//!
//! Not implemented (so scores can differ from Python VADER on such text):
//! - ALL-CAPS emphasis (+0.733 for a capitalised word in mixed-case text);
//! - "!" and "?" emphasis;
//! - the "but" rule (down-weighting text before "but", up-weighting after);
//! - idioms and multi-word lexicon entries: "fed up", "can't stand", "the
//!   bomb", "cut the mustard", ...;
//! - emoticons and emoji (punctuation is stripped, so ":)" never matches;
//!   emoji are not translated to words);
//! - the `pos`/`neu`/`neg` proportions (only the compound score is kept).
//!
//! One deliberate deviation: the lexicon is general and social-media
//! oriented, and a few of its words are plain nouns in market news
//! ("interest rates", "credit", "securities", "shares outstanding", "crude
//! oil", "gross domestic product", "Treasury", "effective March 1",
//! "mortgage-backed"). Those listed in
//! [`FINANCE_NEUTRAL`] are dropped from the lexicon, otherwise nearly every
//! central-bank release would read as glowing. Even so, treat the score as a
//! rough tone signal.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::Sentiment;

/// Compound score at or above which text is "positive" (VADER's threshold).
pub const POSITIVE_THRESHOLD: f64 = 0.05;
/// Compound score at or below which text is "negative" (VADER's threshold).
pub const NEGATIVE_THRESHOLD: f64 = -0.05;

/// VADER's empirically chosen factor for a negated word.
const NEGATION_SCALAR: f64 = -0.74;
/// VADER's booster increment (B_INCR; B_DECR is its negative).
const BOOSTER_STEP: f64 = 0.293;
/// VADER's normalisation constant: sums near ±4 map to about ±0.7.
const NORMALIZATION_ALPHA: f64 = 15.0;

const LEXICON_TSV: &str = include_str!("../../../assets/sentiment/vader_lexicon.txt");

/// token → mean valence, parsed once on first use. Keys borrow from the
/// embedded text, so the map owns no strings.
static LEXICON: LazyLock<HashMap<&'static str, f64>> = LazyLock::new(|| parse_lexicon(LEXICON_TSV));

/// VADER's NEGATE list (vaderSentiment 3.3.2); any token containing "n't"
/// also negates.
#[rustfmt::skip]
const NEGATORS: &[&str] = &[
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't", "can't", "couldn't",
    "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "don't",
    "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't", "neednt", "needn't", "never", "none", "nope", "nor",
    "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent", "oughtn't", "shan't",
    "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom",
    "despite",
];

/// VADER's boosters that intensify (B_INCR).
#[rustfmt::skip]
const BOOSTERS_UP: &[&str] = &[
    "absolutely", "amazingly", "awfully", "completely", "considerable", "considerably", "decidedly", "deeply", "effing",
    "enormous", "enormously", "entirely", "especially", "exceptional", "exceptionally", "extreme", "extremely",
    "fabulously", "flipping", "flippin", "frackin", "fracking", "fricking", "frickin", "frigging", "friggin", "fully",
    "fuckin", "fucking", "fuggin", "fugging", "greatly", "hella", "highly", "hugely", "incredible", "incredibly",
    "intensely", "major", "majorly", "more", "most", "particularly", "purely", "quite", "really", "remarkably", "so",
    "substantially", "thoroughly", "total", "totally", "tremendous", "tremendously", "uber", "unbelievably",
    "unusually", "utter", "utterly", "very",
];

/// VADER's boosters that dampen (B_DECR).
#[rustfmt::skip]
const BOOSTERS_DOWN: &[&str] = &[
    "almost", "barely", "hardly", "kinda", "kindof", "kind-of", "less", "little", "marginal", "marginally",
    "occasional", "occasionally", "partly", "scarce", "scarcely", "slight", "slightly", "somewhat", "sorta", "sortof",
    "sort-of",
];

/// Lexicon words that are neutral in financial news, so they are left out of
/// the lexicon (see the module docs): market nouns, plus press-release
/// boilerplate ("effective immediately", "see attachment", "awarded in the
/// auction").
#[rustfmt::skip]
pub const FINANCE_NEUTRAL: &[&str] = &[
    "asset", "assets", "attachment", "awarded", "awards", "backed", "credit", "credits", "crude", "demand", "effective",
    "gross", "interest", "interests", "mature", "outstanding", "respectively", "securities", "security", "share",
    "shares", "tenders", "treasuries", "treasury", "trust", "value",
];

fn parse_lexicon(tsv: &'static str) -> HashMap<&'static str, f64> {
    tsv.lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let token = fields.next()?.trim();
            let valence = fields.next()?.trim().parse::<f64>().ok()?;
            (!token.is_empty() && valence.is_finite() && !FINANCE_NEUTRAL.contains(&token)).then_some((token, valence))
        })
        .collect()
}

/// Scores `text` (for news: title and summary together).
pub fn analyze(text: &str) -> Sentiment {
    let score = compound(text);
    Sentiment {
        score,
        label: label(score).to_string(),
    }
}

/// VADER's label for a compound score.
pub fn label(compound: f64) -> &'static str {
    if compound >= POSITIVE_THRESHOLD {
        "positive"
    } else if compound <= NEGATIVE_THRESHOLD {
        "negative"
    } else {
        "neutral"
    }
}

/// The VADER compound score of `text`, in [-1, 1] (0 for text with no
/// sentiment words).
pub fn compound(text: &str) -> f64 {
    let tokens = tokenize(text);
    let total: f64 = (0..tokens.len()).map(|i| valence_at(&tokens, i)).sum();
    normalize(total)
}

/// Lower-cased words with surrounding punctuation stripped and inner
/// apostrophes kept ("Didn't!" → "didn't", "“good”" → "good").
pub fn tokenize(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|raw| {
            let word: String = raw
                .chars()
                .map(|c| if matches!(c, '\u{2019}' | '\u{2018}') { '\'' } else { c })
                .flat_map(char::to_lowercase)
                .collect();
            let word = word.trim_matches(|c: char| !c.is_alphanumeric());
            (!word.is_empty()).then(|| word.to_string())
        })
        .collect()
}

fn normalize(sum: f64) -> f64 {
    let score = (sum / (sum * sum + NORMALIZATION_ALPHA).sqrt()).clamp(-1.0, 1.0);
    // VADER reports 4 decimals; doing the same keeps stored scores tidy and
    // comparable with Python VADER output.
    let rounded = (score * 10_000.0).round() / 10_000.0;
    if rounded.is_finite() {
        rounded
    } else {
        0.0
    }
}

fn is_negator(token: &str) -> bool {
    NEGATORS.contains(&token) || token.contains("n't")
}

fn booster(token: &str) -> Option<f64> {
    if BOOSTERS_UP.contains(&token) {
        Some(BOOSTER_STEP)
    } else if BOOSTERS_DOWN.contains(&token) {
        Some(-BOOSTER_STEP)
    } else {
        None
    }
}

/// The valence contributed by token `i` with VADER's context rules applied.
fn valence_at(tokens: &[String], i: usize) -> f64 {
    let lexicon = &*LEXICON;
    let word = tokens[i].as_str();
    let next = tokens.get(i + 1).map(String::as_str);
    // Boosters only modify their neighbours. In "kind of" the word is a
    // hedge, not the positive lexicon word "kind" (VADER scores it 0 too).
    if booster(word).is_some() || (word == "kind" && next == Some("of")) {
        return 0.0;
    }
    let Some(&base) = lexicon.get(word) else {
        return 0.0;
    };
    let mut valence = base;
    // "no problems": "no" is a determiner here, the negation is carried by
    // the next rule on "problems" instead.
    if word == "no" && next.is_some_and(|n| lexicon.contains_key(n)) {
        valence = 0.0;
    }
    let before = |d: usize| i.checked_sub(d).map(|j| tokens[j].as_str());
    if before(1) == Some("no") || before(2) == Some("no") {
        valence = base * NEGATION_SCALAR;
    }

    for distance in 1..=3 {
        let Some(prev) = before(distance) else {
            break;
        };
        if lexicon.contains_key(prev) {
            continue;
        }
        if let Some(step) = booster(prev) {
            let step = if valence < 0.0 { -step } else { step };
            let damping = match distance {
                1 => 1.0,
                2 => 0.95,
                _ => 0.9,
            };
            valence += step * damping;
        }
        valence = negation_check(valence, &before, distance);
    }

    // "least good" reads as not good, except "at least" / "very least".
    if before(1) == Some("least") && !lexicon.contains_key("least") && !matches!(before(2), Some("at" | "very")) {
        valence *= NEGATION_SCALAR;
    }
    valence
}

/// VADER's `_negation_check` for the token `distance` places back.
fn negation_check<'a>(valence: f64, before: &impl Fn(usize) -> Option<&'a str>, distance: usize) -> f64 {
    let at = |d: usize| before(d).unwrap_or_default();
    match distance {
        1 if is_negator(at(1)) => valence * NEGATION_SCALAR,
        2 if at(2) == "never" && matches!(at(1), "so" | "this") => valence * 1.25,
        2 if at(2) == "without" && at(1) == "doubt" => valence,
        2 if is_negator(at(2)) => valence * NEGATION_SCALAR,
        3 if at(3) == "never" && (matches!(at(2), "so" | "this") || matches!(at(1), "so" | "this")) => valence * 1.25,
        3 if at(3) == "without" && (at(2) == "doubt" || at(1) == "doubt") => valence,
        3 if is_negator(at(3)) => valence * NEGATION_SCALAR,
        _ => valence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexicon_loads() {
        assert!(LEXICON.len() > 7_000, "{}", LEXICON.len());
        assert_eq!(LEXICON.get("good"), Some(&1.9));
        assert_eq!(LEXICON.get("terrible"), Some(&-2.1));
    }

    #[test]
    fn good_is_positive() {
        let s = analyze("good");
        assert_eq!(s.label, "positive");
        // Same as Python VADER: 1.9 / sqrt(1.9² + 15).
        assert_eq!(s.score, 0.4404);
    }

    #[test]
    fn terrible_losses_are_negative() {
        let s = analyze("Terrible losses");
        assert_eq!(s.label, "negative");
        assert!(s.score < -0.5, "{}", s.score);
    }

    #[test]
    fn negation_flips_and_dampens() {
        let good = compound("good");
        let not_good = compound("not good");
        assert!(not_good < good);
        assert!(not_good <= NEGATIVE_THRESHOLD, "{not_good}");
        assert_eq!(not_good, -0.3412, "1.9 * -0.74, as in Python VADER");
        assert!(compound("The results weren't good") < 0.0);
        assert!(compound("Investors didn’t lose") > 0.0, "typographic apostrophe");
        // Negator three tokens back still counts; four back does not.
        assert!(compound("not at all good") < 0.0);
        assert!(compound("not one two three good") > 0.0);
        // Two negators cancel out (each multiplies by -0.74).
        assert!(compound("not never good") > 0.0);
        // "no problems": not negative.
        assert!(compound("no problems") > 0.0);
        assert!(compound("without doubt good") > 0.0);
    }

    #[test]
    fn boosters_intensify_and_dampen() {
        let good = compound("good");
        assert!(compound("very good") > good);
        assert!(compound("slightly good") < good);
        assert!(compound("very bad") < compound("bad"));
        assert_eq!(compound("very"), 0.0, "boosters have no valence of their own");
        assert_eq!(
            compound("it was kind of good"),
            good,
            "'kind' before 'of' is not kindness"
        );
        assert!(compound("kind words") > 0.0);
    }

    #[test]
    fn finance_nouns_are_neutral() {
        let s = analyze("Federal Reserve raises interest rates; Treasury securities and shares outstanding");
        assert_eq!((s.score, s.label.as_str()), (0.0, "neutral"));
        assert!(!LEXICON.contains_key("interest"));
        assert_eq!(
            analyze("The change is effective immediately; see attachment").label,
            "neutral"
        );
    }

    #[test]
    fn neutral_text_is_neutral() {
        for text in [
            "",
            "The Federal Reserve released the minutes on Tuesday.",
            "AAPL 10-Q filed",
            "!!! ???",
        ] {
            let s = analyze(text);
            assert_eq!(s.label, "neutral", "{text}");
            assert_eq!(s.score, 0.0, "{text}");
        }
    }

    #[test]
    fn score_is_always_within_bounds() {
        let huge_positive = "great excellent wonderful amazing superb ".repeat(500);
        let huge_negative = "terrible horrible awful disaster crisis ".repeat(500);
        for text in [
            huge_positive.as_str(),
            huge_negative.as_str(),
            "not not not bad",
            "\u{0} \u{fffd}",
        ] {
            let s = compound(text);
            assert!((-1.0..=1.0).contains(&s), "{s}");
        }
        assert!(compound(&huge_positive) > 0.99);
        assert!(compound(&huge_negative) < -0.99);
        for sum in [f64::MAX, f64::MIN, 1e300, -1e300, 0.0] {
            assert!((-1.0..=1.0).contains(&normalize(sum)));
        }
    }

    #[test]
    fn tokenizer_keeps_inner_apostrophes() {
        assert_eq!(
            tokenize("Didn't! \"GOOD\" (rally), ‘tis…"),
            ["didn't", "good", "rally", "tis"]
        );
    }

    #[test]
    fn labels_use_vader_thresholds() {
        assert_eq!(label(0.05), "positive");
        assert_eq!(label(0.0499), "neutral");
        assert_eq!(label(-0.05), "negative");
        assert_eq!(label(-0.0499), "neutral");
    }
}
