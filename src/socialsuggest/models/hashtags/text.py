"""A drafted post as the hashtag model sees it: content words and hashtags, apart.

Hashtags are pulled out before cleaning (``clean_text`` turns ``#word`` into ``word``,
right for tags, wrong here: a hashtag is the thing we predict). Contractions are
expanded *before* ``clean_text`` drops apostrophes, so "don't" becomes "do not" and the
stop-word list removes both, instead of leaving a token "dont" that no list knows.
Stop words, the cleaner's special tokens (url, @user, emoji), numbers and single
letters carry no topic and would pull every post's mean vector to the same place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from socialsuggest.processing.text import SPECIAL_TOKENS, clean_text

_HASHTAG = re.compile(r"(?<![\w&])#(\w+)", re.UNICODE)
#: Longest first, so "won't" is not read as "wo" + "n't".
_CONTRACTIONS = (
    ("won't", "will not"),
    ("can't", "can not"),
    ("shan't", "shall not"),
    ("n't", " not"),
    ("'re", " are"),
    ("'m", " am"),
    ("'ll", " will"),
    ("'ve", " have"),
    ("'d", " would"),
    ("let's", "let us"),
    ("'s", ""),
)
_CONTRACTION = re.compile("|".join(re.escape(c) for c, _ in _CONTRACTIONS), re.IGNORECASE)
_EXPANSION = {c: e for c, e in _CONTRACTIONS}
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | {"rt", "amp", "via"}


@dataclass(frozen=True)
class Draft:
    words: tuple[str, ...]
    hashtags: tuple[str, ...]


def normalise_hashtag(tag: str) -> str:
    """``#GRAMMYs`` and ``grammys`` are one hashtag: lower case, no leading ``#``."""
    return tag.lstrip("#").strip().lower()


def expand_contractions(text: str) -> str:
    text = text.replace("’", "'")
    return _CONTRACTION.sub(lambda m: _EXPANSION[m.group().lower()], text)


def content_words(text: str) -> tuple[str, ...]:
    """The draft's topic words: cleaned, contractions expanded, stop words dropped."""
    tokens = clean_text(expand_contractions(text)).split()
    return tuple(
        t
        for t in tokens
        if t not in STOP_WORDS and t not in SPECIAL_TOKENS and len(t) > 1 and not t.isdigit()
    )


def parse_draft(text: str, hashtags: list[str] | tuple[str, ...] = ()) -> Draft:
    """Words and hashtags of a post; ``hashtags`` adds ones given apart from the text."""
    found = [normalise_hashtag(h) for h in _HASHTAG.findall(text)]
    given = [normalise_hashtag(h) for h in hashtags]
    ordered = list(dict.fromkeys(t for t in [*found, *given] if t))
    return Draft(words=content_words(_HASHTAG.sub(" ", text)), hashtags=tuple(ordered))
