#!/usr/bin/env python3
"""Reference VADER scores for the bundled news sample, for the Rust parity test.

    pip install vaderSentiment==3.3.2
    python3 scripts/vader_reference.py > tests/fixtures/vader_reference.json

For each of the 503 items of assets/news/frb_monetary_press_releases_1996-2014.rss,
in document order, this scores the text that fortfolio's feed parser scores
(`parse_feed` in src/market/news/mod.rs): the plain-text title, a newline, and
the plain-text description cut to 500 characters. The analyzer's lexicon loses
the FINANCE_NEUTRAL words, read from src/market/news/sentiment.rs so both
sides use one list. (The feed is plain ASCII, so fortfolio reading
typographic quotes as ASCII ones changes nothing here.) Labels use
fortfolio's thresholds (compound >= 0.05 positive, <= -0.05 negative, else
neutral).

The output records, per item: its index, link, the SHA-256 of the scored
text (the Rust test checks it, so both sides provably score the same text),
the compound score and the label. Run it once; the result is committed.
"""

import hashlib
import importlib.metadata
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

ROOT = Path(__file__).resolve().parent.parent
FEED = ROOT / "assets/news/frb_monetary_press_releases_1996-2014.rss"
SCORER = ROOT / "src/market/news/sentiment.rs"
SUMMARY_MAX_CHARS = 500
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05


def finance_neutral_words():
    source = SCORER.read_text(encoding="utf-8")
    block = re.search(r"pub const FINANCE_NEUTRAL: &\[&str\] = &\[(.*?)\];", source, re.S)
    if block is None:
        sys.exit("FINANCE_NEUTRAL not found in " + str(SCORER))
    return re.findall(r'"([^"]*)"', block.group(1))


def plain_text(text):
    # The bundled feed is plain text inside XML: no tags or HTML entities once
    # the XML is decoded, so fortfolio's html_to_text only collapses
    # whitespace. Refuse anything else rather than guess.
    if re.search(r"<[A-Za-z/!?]|&#|&[A-Za-z]+;", text):
        sys.exit("markup in the feed text; extend plain_text(): " + text[:80])
    return " ".join(text.split())


def truncate_chars(text, limit):
    return text[:limit].rstrip() if len(text) > limit else text


def label(compound):
    if compound >= POSITIVE_THRESHOLD:
        return "positive"
    if compound <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def main():
    version = importlib.metadata.version("vaderSentiment")
    if version != "3.3.2":
        sys.exit(f"vaderSentiment {version} installed; the fixture is for 3.3.2")
    analyzer = SentimentIntensityAnalyzer()
    excluded = finance_neutral_words()
    for word in excluded:
        analyzer.lexicon.pop(word, None)

    items = []
    for index, item in enumerate(ET.parse(FEED).getroot().iter("item")):
        title = plain_text(item.findtext("title", default=""))
        summary = truncate_chars(plain_text(item.findtext("description", default="")), SUMMARY_MAX_CHARS)
        text = f"{title}\n{summary}"
        compound = analyzer.polarity_scores(text)["compound"]
        items.append(
            {
                "index": index,
                "link": item.findtext("link", default="").strip(),
                "text_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "compound": compound,
                "label": label(compound),
            }
        )

    # One item per line: a small, reviewable diff if it is ever regenerated.
    header = {
        "generator": "scripts/vader_reference.py",
        "vader": "vaderSentiment " + version,
        "excluded_words": excluded,
    }
    out = sys.stdout
    out.write(json.dumps(header)[:-1] + ', "items": [\n')
    out.write(",\n".join(json.dumps(item) for item in items))
    out.write("\n]}\n")


if __name__ == "__main__":
    main()
