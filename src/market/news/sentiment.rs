//! News sentiment: a Rust implementation of VADER (Hutto & Gilbert, 2014)
//! over the bundled VADER lexicon (`assets/sentiment/vader_lexicon.txt`, MIT,
//! Copyright (c) 2016 C.J. Hutto; the licence ships beside it in
//! `VADER_LICENSE.txt`). This is the "sentiment" part of the news design:
//! every [`super::NewsItem`] gets the compound score of its title + summary.
//!
//! The rules are those of `SentimentIntensityAnalyzer.polarity_scores` in
//! vaderSentiment 3.3.2, re-implemented (no VADER code is included):
//! - **tokenising**: split on whitespace; a token loses its leading and
//!   trailing ASCII punctuation only if more than 2 characters remain, so
//!   emoticons (":)", ":-(") stay whole and fragments such as "ha..." or
//!   "pu..." are not read as the lexicon words "ha" and "pu";
//! - **lexicon lookup**: each token (lower-cased) scores its mean human
//!   valence (-4..+4); emoticons score as the lexicon lists them;
//! - **ALL-CAPS emphasis**: when some but not all tokens are in capitals, a
//!   capitalised sentiment word gains 0.733 in magnitude (a capitalised
//!   booster adds it to the word it boosts);
//! - **booster words** ("very", "extremely", "slightly", "kinda", ...):
//!   within the 3 tokens before a sentiment word they add ±0.293 in the
//!   direction of its valence (×0.95 at distance 2, ×0.9 at distance 3) and
//!   score nothing themselves; "kind" followed by "of" scores nothing either,
//!   and "kind of", "sort of" or "just enough" two or three tokens back
//!   subtract 0.293;
//! - **negation**: a negator ("not", "never", "without", any "n't" form, ...
//!   — VADER's list) in any of the 3 preceding tokens multiplies the valence
//!   by -0.74, once per negator; "never so/this good" intensifies (×1.25)
//!   instead and "without doubt" does not negate. As in VADER, the booster,
//!   negation and idiom checks only look back past tokens that are not
//!   lexicon words, and at distance 3 any word right after "so" or "this" is
//!   intensified ×1.25 (the reference's operator precedence, kept);
//! - **"no"**: "no" before a lexicon word scores nothing itself, and a word
//!   one or two tokens after "no" (three in "no X or/nor Y") is negated;
//! - **"least"**: "least good" is negated unless it reads "at/very least";
//! - **idioms**: VADER's special cases ("the bomb", "bad ass", "yeah right",
//!   "kiss of death", "to die for", "beating heart", "bus stop", ...) replace
//!   the valence of a sentiment word inside them;
//! - **"but"**: scores before the first "but" are halved, those after it
//!   ×1.5. Like the reference, each score is found by its value, so a score
//!   equal to an earlier (already rescaled) one rescales that one instead;
//! - **"!" and "?"**: each "!" (at most 4) adds 0.292 to the magnitude of a
//!   non-zero sum; 2 or 3 "?" add 0.18 each, more add 0.96;
//! - **compound**: the sum normalised as `x / sqrt(x² + 15)`, clamped to
//!   [-1, 1] and rounded to 4 decimals;
//! - **labels**: compound >= 0.05 positive, <= -0.05 negative, else neutral.
//!
//! Not implemented: emoji (the reference first replaces each emoji with its
//! English name from a second word list, which is not bundled) and the
//! `pos`/`neu`/`neg` proportions (only the compound score is kept).
//!
//! Two deliberate deviations:
//! - the lexicon is general and social-media oriented, and a few of its
//!   words are plain nouns in market news ("interest rates", "credit",
//!   "securities", "shares outstanding", "crude oil", "gross domestic
//!   product", "Treasury", "effective March 1", "mortgage-backed"). Those
//!   listed in [`FINANCE_NEUTRAL`] are dropped from the lexicon, otherwise
//!   nearly every central-bank release would read as glowing;
//! - typographic quotes and apostrophes (‘ ’ “ ”) and the ellipsis (…) are
//!   read as their ASCII forms, so “good” and didn’t score as "good" and
//!   didn't do (the reference only strips ASCII punctuation).
//!
//! Parity: with [`FINANCE_NEUTRAL`] removed from its lexicon too, Python
//! vaderSentiment 3.3.2 gives the same label on all 503 bundled news items
//! and the same compound score to 4 decimals (fixture
//! `tests/fixtures/vader_reference.json`, made by
//! `scripts/vader_reference.py`; test `bundled_news_matches_reference_vader`).
//! Even so, treat the score as a rough tone signal.

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
/// VADER's increment for an ALL-CAPS word in mixed-case text (C_INCR).
const CAPS_STEP: f64 = 0.733;
/// VADER's increment per "!" (at most [`MAX_EXCLAMATIONS`] count).
const EXCLAMATION_STEP: f64 = 0.292;
const MAX_EXCLAMATIONS: usize = 4;
/// VADER's increment per "?" when there are 2 or 3 of them...
const QUESTION_STEP: f64 = 0.18;
/// ... and its fixed increment for more.
const MANY_QUESTIONS: f64 = 0.96;
/// Factors of the "but" rule: before the first "but", and after it.
const BEFORE_BUT: f64 = 0.5;
const AFTER_BUT: f64 = 1.5;
/// VADER's factor for "never so/this" (and the distance-3 "so/this" case).
const NEVER_SO_SCALAR: f64 = 1.25;
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

/// VADER's boosters that dampen (B_DECR). The two-word ones only match as
/// phrases (see [`idioms`]), since tokens never contain spaces.
#[rustfmt::skip]
const BOOSTERS_DOWN: &[&str] = &[
    "almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof", "kind-of", "less", "little", "marginal",
    "marginally", "occasional", "occasionally", "partly", "scarce", "scarcely", "slight", "slightly", "somewhat",
    "sort of", "sorta", "sortof", "sort-of",
];

/// VADER's SPECIAL_CASES: phrases whose valence replaces that of the
/// sentiment word inside them (its one-word entry, "badass", can never match
/// a phrase and is left out).
const IDIOMS: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
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

/// One token as the rules see it.
struct Token {
    lower: String,
    /// Python's `str.isupper`: some upper-case letter and no lower-case one.
    all_caps: bool,
}

/// The VADER compound score of `text`, in [-1, 1] (0 for text with no
/// sentiment words).
pub fn compound(text: &str) -> f64 {
    let tokens: Vec<Token> = tokenize(text)
        .into_iter()
        .map(|word| Token {
            all_caps: word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase),
            lower: word.to_lowercase(),
        })
        .collect();
    let caps_count = tokens.iter().filter(|t| t.all_caps).count();
    let mixed_caps = caps_count > 0 && caps_count < tokens.len();
    let mut valences: Vec<f64> = (0..tokens.len()).map(|i| valence_at(&tokens, i, mixed_caps)).collect();
    but_rule(&tokens, &mut valences);
    let mut sum = valences.iter().fold(0.0, |sum, v| sum + v);
    let emphasis = punctuation_emphasis(text);
    if sum > 0.0 {
        sum += emphasis;
    } else if sum < 0.0 {
        sum -= emphasis;
    }
    normalize(sum)
}

/// VADER's tokens, case kept: whitespace-separated words, each stripped of
/// leading and trailing ASCII punctuation when more than 2 characters remain
/// ("Didn't!" → "Didn't", ":)" and "ha..." stay as they are). Typographic
/// quotes and the ellipsis count as their ASCII forms.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut ascii = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{2018}' | '\u{2019}' => ascii.push('\''),
            '\u{201C}' | '\u{201D}' => ascii.push('"'),
            '\u{2026}' => ascii.push_str("..."),
            c => ascii.push(c),
        }
    }
    // Python's `str.split()` also splits on the ASCII information separators.
    ascii
        .split(|c: char| c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c))
        .filter(|raw| !raw.is_empty())
        .map(|raw| {
            let stripped = raw.trim_matches(|c: char| c.is_ascii_punctuation());
            if stripped.chars().count() > 2 { stripped } else { raw }.to_string()
        })
        .collect()
}

fn normalize(sum: f64) -> f64 {
    let score = (sum / (sum * sum + NORMALIZATION_ALPHA).sqrt()).clamp(-1.0, 1.0);
    // VADER reports 4 decimals; doing the same keeps stored scores tidy and
    // comparable with Python VADER output.
    let rounded = (score * 10_000.0).round() / 10_000.0;
    // `!= 0.0` also turns -0.0 into 0.0.
    if rounded.is_finite() && rounded != 0.0 {
        rounded
    } else {
        0.0
    }
}

/// The magnitude that "!" and "?" add to a non-zero sum.
fn punctuation_emphasis(text: &str) -> f64 {
    let exclamations = text.matches('!').count().min(MAX_EXCLAMATIONS);
    let questions = text.matches('?').count();
    let question_emphasis = match questions {
        0 | 1 => 0.0,
        2 | 3 => questions as f64 * QUESTION_STEP,
        _ => MANY_QUESTIONS,
    };
    exclamations as f64 * EXCLAMATION_STEP + question_emphasis
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

/// What booster `token` adds to a word of valence `valence`: its step in the
/// direction of the valence, plus the caps increment if it is shouted.
fn booster_step(token: &Token, valence: f64, mixed_caps: bool) -> f64 {
    let Some(step) = booster(&token.lower) else {
        return 0.0;
    };
    let mut step = if valence < 0.0 { -step } else { step };
    if mixed_caps && token.all_caps {
        step += if valence > 0.0 { CAPS_STEP } else { -CAPS_STEP };
    }
    step
}

/// The valence contributed by token `i` with VADER's word-level rules
/// applied (the "but" and punctuation rules act on the whole text later).
fn valence_at(tokens: &[Token], i: usize, mixed_caps: bool) -> f64 {
    let lexicon = &*LEXICON;
    let word = tokens[i].lower.as_str();
    let lower = |j: usize| tokens.get(j).map_or("", |t| t.lower.as_str());
    // Boosters only modify their neighbours. In "kind of" the word is a
    // hedge, not the positive lexicon word "kind".
    if booster(word).is_some() || (word == "kind" && lower(i + 1) == "of") {
        return 0.0;
    }
    let Some(&base) = lexicon.get(word) else {
        return 0.0;
    };
    let mut valence = base;
    // "no problems": "no" is a determiner here, the negation is carried by
    // the next rule on "problems" instead.
    if word == "no" && lexicon.contains_key(lower(i + 1)) {
        valence = 0.0;
    }
    let before = |d: usize| i.checked_sub(d).map_or("", lower);
    if before(1) == "no" || before(2) == "no" || (before(3) == "no" && matches!(before(1), "or" | "nor")) {
        valence = base * NEGATION_SCALAR;
    }
    if mixed_caps && tokens[i].all_caps {
        valence += if valence > 0.0 { CAPS_STEP } else { -CAPS_STEP };
    }

    for distance in 1..=3 {
        let Some(j) = i.checked_sub(distance) else {
            break;
        };
        if lexicon.contains_key(lower(j)) {
            continue;
        }
        let damping = match distance {
            1 => 1.0,
            2 => 0.95,
            _ => 0.9,
        };
        valence += booster_step(&tokens[j], valence, mixed_caps) * damping;
        valence = negation_check(valence, &before, distance);
        if distance == 3 {
            valence = idioms(valence, &lower, i);
        }
    }

    // "least good" reads as not good, except "at least" / "very least".
    if before(1) == "least" && !lexicon.contains_key("least") && !matches!(before(2), "at" | "very") {
        valence *= NEGATION_SCALAR;
    }
    valence
}

/// VADER's `_negation_check` for the token `distance` places back.
fn negation_check<'a>(valence: f64, before: &impl Fn(usize) -> &'a str, distance: usize) -> f64 {
    let is_so_or_this = |d: usize| matches!(before(d), "so" | "this");
    match distance {
        1 if is_negator(before(1)) => valence * NEGATION_SCALAR,
        2 if before(2) == "never" && is_so_or_this(1) => valence * NEVER_SO_SCALAR,
        2 if before(2) == "without" && before(1) == "doubt" => valence,
        2 if is_negator(before(2)) => valence * NEGATION_SCALAR,
        // As the reference groups it: "never so/this _ X", or any "so/this X".
        3 if (before(3) == "never" && is_so_or_this(2)) || is_so_or_this(1) => valence * NEVER_SO_SCALAR,
        3 if before(3) == "without" && (before(2) == "doubt" || before(1) == "doubt") => valence,
        3 if is_negator(before(3)) => valence * NEGATION_SCALAR,
        _ => valence,
    }
}

/// VADER's `_special_idioms_check` for the word at `i` (`i >= 3`): an idiom
/// around it sets its valence, and a dampening phrase ("kind of") two or
/// three tokens back lowers it.
fn idioms<'a>(valence: f64, lower: &impl Fn(usize) -> &'a str, i: usize) -> f64 {
    let phrase = |from: usize, to: usize| (from..=to).map(lower).collect::<Vec<_>>().join(" ");
    let idiom = |text: String| IDIOMS.iter().find(|(idiom, _)| *idiom == text).map(|&(_, v)| v);
    let mut valence = [(i - 1, i), (i - 2, i), (i - 2, i - 1), (i - 3, i - 1), (i - 3, i - 2)]
        .into_iter()
        .find_map(|(from, to)| idiom(phrase(from, to)))
        .unwrap_or(valence);
    // Phrases that run past the last token never match (they end in a space).
    for to in [i + 1, i + 2] {
        if let Some(v) = idiom(phrase(i, to)) {
            valence = v;
        }
    }
    // The reference's boosting phrases all have two words.
    for (from, to) in [(i - 3, i - 2), (i - 2, i - 1)] {
        if let Some(step) = booster(&phrase(from, to)) {
            valence += step;
        }
    }
    valence
}

/// VADER's "but" rule: scores before the first "but" are halved, those after
/// it multiplied by 1.5. Each score is looked up by value, as the reference
/// does, so a score equal to an earlier one rescales the earlier one.
fn but_rule(tokens: &[Token], valences: &mut [f64]) {
    let Some(but) = tokens.iter().position(|t| t.lower == "but") else {
        return;
    };
    for k in 0..valences.len() {
        let value = valences[k];
        let first = valences.iter().position(|&v| v == value).unwrap_or(k);
        if first < but {
            valences[first] = value * BEFORE_BUT;
        } else if first > but {
            valences[first] = value * AFTER_BUT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1.9 / sqrt(1.9² + 15): "good" alone.
    const GOOD: f64 = 0.4404;

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
        assert_eq!(compound("Investors didn't lose"), 0.3089);
        // Negator three tokens back still counts; four back does not.
        assert!(compound("not at all good") < 0.0);
        assert!(compound("not one two three good") > 0.0);
        // Two negators cancel out (each multiplies by -0.74).
        assert!(compound("not never good") > 0.0);
        // "no problems": not negative.
        assert!(compound("no problems") > 0.0);
        assert!(compound("without doubt good") > 0.0);
        // "no X or Y" negates Y too.
        assert_eq!(compound("no good or bad"), 0.1139);
        assert_eq!(compound("never so good"), 0.5777);
        assert_eq!(compound("it was never this good"), 0.6084);
        // The reference's precedence: "so good" three tokens in counts too.
        assert_eq!(compound("the plan is so good"), 0.5777);
        assert_eq!(compound("the least good"), -0.3412);
        assert_eq!(compound("at least good"), GOOD);
    }

    #[test]
    fn boosters_intensify_and_dampen() {
        let good = compound("good");
        assert!(compound("very good") > good);
        assert!(compound("slightly good") < good);
        assert!(compound("very bad") < compound("bad"));
        assert_eq!(compound("very"), 0.0, "boosters have no valence of their own");
        // "kind" before "of" is not kindness, and "kind of" / "sort of"
        // dampen (values from Python VADER).
        assert_eq!(compound("it was kind of good"), 0.3832);
        assert_eq!(compound("the rally was sort of good"), 0.3832);
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
    fn tokenizer_strips_punctuation_like_vader() {
        assert_eq!(
            tokenize("Didn't! \"GOOD\" (rally), ‘tis…"),
            ["Didn't", "GOOD", "rally", "tis"]
        );
        // Punctuation only goes when more than 2 characters remain.
        assert_eq!(
            tokenize("ha... pu... :) :-( by, no! U.S."),
            ["ha...", "pu...", ":)", ":-(", "by,", "no!", "U.S"]
        );
        // Typographic quotes read as ASCII ones (a deliberate deviation).
        assert_eq!(tokenize("“good” news…"), ["good", "news"]);
        assert_eq!(compound("“Good” news"), compound("\"Good\" news"));
    }

    #[test]
    fn short_fragments_are_not_lexicon_words() {
        assert_eq!(compound("ha"), 0.34);
        assert_eq!(compound("ha..."), 0.0, "not the lexicon word 'ha'");
        assert_eq!(compound("pu..."), 0.0, "not the lexicon word 'pu'");
        assert_eq!(compound("Ha... the markets"), 0.0);
    }

    #[test]
    fn emoticons_score_as_in_the_lexicon() {
        assert_eq!(compound(":)"), 0.4588);
        assert_eq!(compound(":-("), -0.3612);
        assert_eq!(compound("Markets sink :("), -0.4404);
    }

    #[test]
    fn all_caps_emphasis_needs_mixed_case() {
        // Values from Python VADER.
        assert_eq!(compound("The news is GOOD"), 0.5622);
        assert_eq!(compound("THE NEWS IS GOOD"), GOOD, "all caps is no emphasis");
        assert_eq!(compound("The news is VERY good"), 0.6028, "a shouted booster");
        assert_eq!(compound("It is not GOOD"), -0.4494);
        assert_eq!(compound("NO good news"), -0.4835);
        assert_eq!(compound("Today SUX!"), -0.5461);
        assert_eq!(
            compound("VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!"),
            0.9469
        );
    }

    #[test]
    fn exclamation_and_question_marks_amplify() {
        assert_eq!(compound("good!"), 0.4926);
        assert_eq!(compound("good!!!!!!"), 0.6209, "at most 4 count");
        assert_eq!(compound("good?"), GOOD, "one '?' is no emphasis");
        assert_eq!(compound("good??"), 0.504);
        assert_eq!(compound("good????"), 0.594);
        assert_eq!(compound("!!! ???"), 0.0, "no sentiment, nothing to amplify");
    }

    #[test]
    fn but_shifts_weight_to_what_follows() {
        assert_eq!(compound("The food was good, but the service was terrible"), -0.4939);
        assert_eq!(compound("good good but good"), 0.775);
        assert_eq!(compound("Today only kinda sux! But I'll get by, lol"), 0.5249);
    }

    #[test]
    fn but_rule_looks_scores_up_by_value_like_vader() {
        let tokens: Vec<Token> = ["a", "but", "b", "c"]
            .into_iter()
            .map(|w| Token {
                lower: w.to_string(),
                all_caps: false,
            })
            .collect();
        let mut valences = [2.0, 0.0, 3.0, 1.0];
        but_rule(&tokens, &mut valences);
        // 1.0 after "but" equals the halved 2.0 before it, which is halved
        // again; Python's `_but_check` gives the same.
        assert_eq!(valences, [0.5, 0.0, 4.5, 1.0]);
    }

    #[test]
    fn idioms_replace_word_valence() {
        assert_eq!(compound("this is the bomb"), 0.6124);
        assert_eq!(compound("we were at the bus stop happily"), 0.0);
        assert_eq!(compound("yeah right"), 0.296, "needs 3 tokens before it, as in VADER");
    }

    #[test]
    fn labels_use_vader_thresholds() {
        assert_eq!(label(0.05), "positive");
        assert_eq!(label(0.0499), "neutral");
        assert_eq!(label(-0.05), "negative");
        assert_eq!(label(-0.0499), "neutral");
    }

    /// Parity with Python vaderSentiment 3.3.2 (the same text, the same
    /// lexicon less [`FINANCE_NEUTRAL`]) on the 503 bundled news items; the
    /// fixture comes from `scripts/vader_reference.py`.
    #[test]
    fn bundled_news_matches_reference_vader() {
        use sha2::{Digest, Sha256};

        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/vader_reference.json")).unwrap();
        let excluded: Vec<&str> = fixture["excluded_words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(excluded, FINANCE_NEUTRAL, "the fixture was made with this word list");
        let expected = fixture["items"].as_array().unwrap();
        let items = super::super::parse_feed(super::super::BUNDLED_FRB_FEED, super::super::BUNDLED_FRB_SOURCE).unwrap();
        assert_eq!(items.len(), 503);
        assert_eq!(expected.len(), items.len());

        let mut agree = 0;
        let mut max_delta = 0.0f64;
        let mut worst = 0;
        for (i, (item, reference)) in items.iter().zip(expected).enumerate() {
            assert_eq!(reference["index"], i);
            assert_eq!(reference["link"], item.url.as_str());
            let text = format!("{}\n{}", item.title, item.summary);
            assert_eq!(
                reference["text_sha256"],
                hex::encode(Sha256::digest(text.as_bytes())),
                "item {i}: the reference scored other text"
            );
            if reference["label"] == item.sentiment.label.as_str() {
                agree += 1;
            }
            let delta = (reference["compound"].as_f64().unwrap() - item.sentiment.score).abs();
            if delta > max_delta {
                (max_delta, worst) = (delta, i);
            }
        }
        let agreement = f64::from(agree) / items.len() as f64;
        eprintln!(
            "labels agree on {agree}/{} ({:.2}%), max |Δcompound| {max_delta:.4} (item {worst})",
            items.len(),
            agreement * 100.0
        );
        assert!(agreement >= 0.995, "label agreement {agreement}");
        assert!(max_delta <= 0.01, "item {worst}: |Δcompound| {max_delta}");
    }
}
