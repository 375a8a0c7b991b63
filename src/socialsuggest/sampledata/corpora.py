"""Real corpora the sample generator draws text and tags from.

Synthetic random words would make every learned model meaningless; drawing each
org's messages and tag vocabulary from one real community (a StackExchange site,
a tweet collection, airline customer tweets) gives models something true to learn
and metrics something true to measure.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import html
import io
import re
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_TAG_RE = re.compile(r"<[^>]+>")
_WS = re.compile(r"\s+")
_HASHTAG = re.compile(r"#(\w+)")


@dataclass(frozen=True)
class Document:
    text: str
    tags: tuple[str, ...]
    author: str | None = None
    hashtags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: tuple[Document, ...]
    networks: tuple[str, ...]
    message_types: tuple[str, ...]


#: name -> (loader, networks, message types) ; the order is the org assignment order.
CORPUS_NAMES = ("se_cooking", "tw_grammys", "airline", "se_biology", "tw_covid19", "se_crypto")


def pseudonym(prefix: str, value: str) -> str:
    """Opaque, stable id for a real user name: the generator never emits real names."""
    return f"{prefix}-{hashlib.blake2b(value.encode(), digest_size=6).hexdigest()}"


def _clean_html(raw: str, limit: int) -> str:
    text = _WS.sub(" ", html.unescape(_TAG_RE.sub(" ", raw))).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + "…"


def _stackexchange(root: Path, site: str) -> list[Document]:
    archive_path = root / "raw" / "stackexchange" / f"{site}.csv.zip"
    with zipfile.ZipFile(archive_path) as archive, archive.open(archive.namelist()[0]) as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    docs = []
    for row in rows:
        body = _clean_html(row["content"], 220)
        text = f"{row['title'].strip()} {body}".strip()
        tags = tuple(t for t in row["tags"].split() if t)
        if text and tags:
            docs.append(Document(text=text, tags=tags))
    return docs


def _tweets(root: Path, collection: str) -> list[Document]:
    path = root / "raw" / "tweets" / f"{collection}_tweets.csv"
    docs = []
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = _WS.sub(" ", row["text"]).strip()
            if not text:
                continue
            try:
                listed = ast.literal_eval(row["hashtags"]) if row["hashtags"] else []
            except (ValueError, SyntaxError):
                listed = []
            hashtags = tuple(dict.fromkeys(h.lower() for h in [*listed, *_HASHTAG.findall(text)]))
            # As a tagged message the hashtags are the labels, so they leave the text.
            stripped = _WS.sub(" ", _HASHTAG.sub(" ", text)).strip() or text
            docs.append(
                Document(
                    text=stripped,
                    tags=hashtags,
                    author=pseudonym("tw", row["user_name"]),
                    hashtags=hashtags,
                )
            )
    return docs


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _airline(root: Path) -> list[Document]:
    path = root / "raw" / "airline" / "airline_tweets_clean.csv"
    docs = []
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            text = _WS.sub(" ", row["text"]).strip()
            tags = [f"sentiment-{row['airline_sentiment']}"]
            if row["negativereason"]:
                tags.append(_slug(row["negativereason"]))
            if text:
                docs.append(Document(text=text, tags=tuple(tags)))
    return docs


@cache
def load_corpus(datasets_dir: Path, name: str) -> Corpus:
    """Load (once per process) one named corpus from the shared datasets folder."""
    if name.startswith("se_"):
        return Corpus(
            name,
            tuple(_stackexchange(datasets_dir, name[3:])),
            networks=("facebook", "twitter", "linkedin", "instagram"),
            message_types=("comment", "mention", "direct_message", "review"),
        )
    if name.startswith("tw_"):
        return Corpus(
            name,
            tuple(_tweets(datasets_dir, name[3:])),
            networks=("twitter",),
            message_types=("mention", "reply", "comment"),
        )
    if name == "airline":
        return Corpus(
            name,
            tuple(_airline(datasets_dir)),
            networks=("twitter", "facebook"),
            message_types=("mention", "direct_message", "reply"),
        )
    raise ValueError(f"corpus: unknown name {name!r} (one of {CORPUS_NAMES})")
