"""Text normalisation shared by training (Spark) and serving (live requests).

Both sides import this one pure-Python function, so a message is cleaned the same
way when a model learns from it and when it is asked to suggest tags for it: there
is no second implementation that could drift (training/serving skew).

Choices and why:

* URLs, e-mail addresses and @mentions become the tokens ``url``, ``email`` and
  ``@user``: their presence is a signal, their value is noise and often personal.
* Runs of emoji become one ``emoji`` token (sentiment signal in customer care).
* ``#word`` keeps ``word``: hashtags are ordinary vocabulary for tag suggestion.
* HTML entities (``&amp;`` from exporters) are decoded before anything else.
* Apostrophes inside words are dropped (``don't`` -> ``dont``) so contractions stay
  one token; any other punctuation separates tokens; numbers are kept.
* Lemmatisation is an optional, tiny rule-based English suffix stripper: the
  machine has no network for NLTK/spaCy data, and a deterministic rule set is
  trivially identical at serving time.
"""

from __future__ import annotations

import html
import re

import pandas as pd

URL_TOKEN = "url"
EMAIL_TOKEN = "email"
MENTION_TOKEN = "@user"
EMOJI_TOKEN = "emoji"
SPECIAL_TOKENS = frozenset({URL_TOKEN, EMAIL_TOKEN, MENTION_TOKEN, EMOJI_TOKEN})

_EMOJI_CHARS = (
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, flags, skin tones
    "\u2600-\u27bf"  # misc symbols and dingbats
    "\u2300-\u23ff"  # misc technical (watch, hourglass)
    "\u2b00-\u2bff"  # arrows, stars
    "\ufe0f\u200d\u20e3"  # variation selector, zero-width joiner, keycap
)
_TOKEN = re.compile(
    r"(?P<url>(?:https?://|www\.)\S+)"
    r"|(?P<email>[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    r"|(?P<mention>(?<!\w)@\w+)"
    rf"|(?P<emoji>[{_EMOJI_CHARS}]+)"
    r"|(?P<word>[^\W_]+(?:['’][^\W_]+)*)",
    re.UNICODE,
)
_APOSTROPHES = re.compile(r"['’]")


def clean_text(text: str | None, *, lemmatize: bool = False) -> str:
    """Normalise one message to space-separated lowercase tokens."""
    if not text:
        return ""
    tokens: list[str] = []
    for match in _TOKEN.finditer(html.unescape(text)):
        kind = match.lastgroup
        if kind == "url":
            tokens.append(URL_TOKEN)
        elif kind == "email":
            tokens.append(EMAIL_TOKEN)
        elif kind == "mention":
            tokens.append(MENTION_TOKEN)
        elif kind == "emoji":
            tokens.append(EMOJI_TOKEN)
        else:
            word = _APOSTROPHES.sub("", match.group()).lower()
            tokens.append(lemma(word) if lemmatize else word)
    return " ".join(tokens)


def clean_series(texts: pd.Series, *, lemmatize: bool = False) -> pd.Series:
    """``clean_text`` over a Series (the Spark pandas UDF and batch scoring use this)."""
    return texts.map(lambda t: clean_text(t, lemmatize=lemmatize), na_action="ignore").fillna("")


# ---- lemmatisation -------------------------------------------------------------------
_KEEP_WORDS = """this his is was has does its yes us thus plus bus gas news series species always
    perhaps sometimes whereas across less unless process business address access class
    during nothing something anything everything thing king morning evening
    need feed seed speed indeed bed red"""
_KEEP = frozenset(_KEEP_WORDS.split())
_VOWELS = frozenset("aeiou")
_UNDOUBLE = frozenset("bdgmnprtl")


def _has_vowel(stem: str) -> bool:
    return any(ch in _VOWELS for ch in stem) or "y" in stem[1:]


def _short_cvc(stem: str) -> bool:
    """'mak', 'hop', 'bak': a short consonant-vowel-consonant stem lost a final 'e'."""
    return (
        len(stem) == 3
        and stem[0] not in _VOWELS
        and stem[1] in _VOWELS
        and stem[2] not in _VOWELS
        and stem[2] not in "wxy"
    )


def _after_verb_suffix(stem: str) -> str:
    doubled = len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] in _UNDOUBLE
    # 'stopp' -> 'stop', 'cancell' -> 'cancel'; 'call' (4 letters, l) stays.
    if doubled and (stem[-1] != "l" or len(stem) > 4):
        return stem[:-1]
    if _short_cvc(stem):
        return stem + "e"
    return stem


def lemma(word: str) -> str:
    """Strip common English inflections: plurals, -ing, -ed (rules, not a dictionary)."""
    if len(word) <= 3 or word in _KEEP or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith(("xes", "ches", "shes", "zzes")):
        return word[:-2]
    if word.endswith("ing") and len(word) >= 6 and _has_vowel(word[:-3]):
        return _after_verb_suffix(word[:-3])
    if word.endswith("ed") and not word.endswith("eed") and len(word) >= 5:
        stem = word[:-2]
        if _has_vowel(stem):
            return _after_verb_suffix(stem)
        return word
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
