"""clean_text: the one normaliser training (Spark UDF) and serving both call."""

from __future__ import annotations

import pandas as pd
import pytest

from socialsuggest.processing.text import clean_series, clean_text, lemma


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Check https://t.co/AbC?x=1 NOW!!", "check url now"),
        ("see www.example.com/page.html.", "see url"),
        ("@Delta my bag is lost", "@user my bag is lost"),
        ("thanks @united_airlines, @JetBlue!", "thanks @user @user"),
        ("mail bob.smith+x@example.co.uk please", "mail email please"),
        ("#Python #machine_learning rocks", "python machine learning rocks"),
        ("great flight 😍😍 thanks ✈️", "great flight emoji thanks emoji"),
        ("so bad 😡, really 👎🏽", "so bad emoji really emoji"),
        ("I don't care, it’s fine", "i dont care its fine"),
        ("Fish &amp; chips &gt; pizza", "fish chips pizza"),
        ("Flight DL123 delayed 3.5 hours, gate B12", "flight dl123 delayed 3 5 hours gate b12"),
        ("  many   spaces\n\tand\nlines  ", "many spaces and lines"),
        ("Crème brûlée in Zürich — 東京", "crème brûlée in zürich 東京"),
        ("snake_case--and...dots", "snake case and dots"),
        ("!!! ??? ...", ""),
        ("", ""),
    ],
)
def test_clean_text(raw: str, cleaned: str) -> None:
    assert clean_text(raw) == cleaned


def test_clean_text_is_idempotent_and_accepts_none() -> None:
    once = clean_text("RT @bob: Check https://x.io #Deals 😀 don't miss!")
    assert once == "rt @user check url deals emoji dont miss"
    assert clean_text(once) == once
    assert clean_text(None) == ""


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("tickets", "ticket"),
        ("flies", "fly"),
        ("boxes", "box"),
        ("watches", "watch"),
        ("classes", "class"),
        ("running", "run"),
        ("making", "make"),
        ("booking", "book"),
        ("delayed", "delay"),
        ("cancelled", "cancel"),
        ("stopped", "stop"),
        ("hoped", "hope"),
        ("called", "call"),
        ("fixed", "fix"),
        ("need", "need"),
        ("this", "this"),
        ("was", "was"),
        ("bus", "bus"),
        ("thing", "thing"),
        ("morning", "morning"),
        ("dl123", "dl123"),
    ],
)
def test_lemma(word: str, expected: str) -> None:
    assert lemma(word) == expected


def test_lemmatize_keeps_special_tokens() -> None:
    text = "@Delta cancelled my flights, waiting hours https://t.co/x 😡"
    assert clean_text(text, lemmatize=True) == "@user cancel my flight wait hour url emoji"


def test_clean_series_matches_clean_text_and_handles_missing() -> None:
    texts = pd.Series(["Hello @you!", None, "Visit http://a.b #Sale", ""])
    result = clean_series(texts)
    assert result.tolist() == ["hello @user", "", "visit url sale", ""]
    assert clean_series(texts, lemmatize=True).tolist()[2] == "visit url sale"
    assert result.index.equals(texts.index)
