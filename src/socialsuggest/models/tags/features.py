"""Message → sparse feature matrix: word TF-IDF, optional char TF-IDF, one-hot metadata."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import OneHotEncoder

from socialsuggest.models.tags.config import TagModelConfig

METADATA_COLUMNS = ("network", "message_type")


#: Keeps one-character tokens and hyphenated words ("sous-vide").
TOKEN_PATTERN = r"(?u)\b[\w][\w'-]*\b"


class StemmingTokenizer:
    """Text → Snowball stems of its words, so "proteins" and "protein" share a column.

    Picklable (the model artifact holds it): the stemmer is rebuilt lazily, one per
    thread, since PyStemmer's cache is not safe to share between threads.
    """

    def __init__(self, language: str) -> None:
        self.language = language
        self._pattern = re.compile(TOKEN_PATTERN)
        self._local = threading.local()

    def __call__(self, text: str) -> list[str]:
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer  # PyStemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer(self.language)
        words: list[str] = stemmer.stemWords(self._pattern.findall(text))
        return words

    def __getstate__(self) -> dict[str, Any]:
        return {"language": self.language}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["language"])  # type: ignore[misc]


def _word_vectorizer(config: TagModelConfig) -> TfidfVectorizer:
    # sublinear_tf: a word said three times is not three times the evidence.
    stem = config.stem_language
    return TfidfVectorizer(
        ngram_range=config.word_ngrams,
        min_df=config.min_df,
        max_features=config.max_features,
        sublinear_tf=True,
        tokenizer=StemmingTokenizer(stem) if stem else None,
        token_pattern=None if stem else TOKEN_PATTERN,
        dtype=np.float64,
    )


def _char_vectorizer(config: TagModelConfig, ngrams: tuple[int, int]) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=ngrams,
        min_df=config.min_df,
        max_features=config.max_features,
        sublinear_tf=True,
        dtype=np.float64,
    )


def _values(df: pd.DataFrame, column: str, missing: str) -> list[str]:
    """A column as plain strings (``missing`` for absent/None/NaN), without pandas' per-call
    conversions: a serving request is one row, where those dominate."""
    if column not in df:
        return [missing] * len(df)
    return [missing if v is None or v != v else str(v) for v in df[column].tolist()]


def _texts(df: pd.DataFrame) -> list[str]:
    return _values(df, "text", "")


def _metadata(df: pd.DataFrame) -> pd.DataFrame:
    """Missing metadata columns become "unknown": serving requests may omit them."""
    return pd.DataFrame(
        {
            col: (df[col].fillna("unknown").astype(str) if col in df else "unknown")
            for col in METADATA_COLUMNS
        },
        index=df.index,
    )


def _fit_one_hot(df: pd.DataFrame) -> OneHotEncoder | None:
    """The encoder of the metadata columns that vary in ``df``; None when none does.

    A column with one value in training (a single-network org, or data without the
    column: "unknown" throughout) tells the tags nothing the intercept does not, and a
    feature of 1 in every row stiffens liblinear's dual problem: on tw_grammys, where
    both columns are "unknown", the logistic learner's fits took 8.4 s with them and
    4.2 s without, at the same NDCG@3 (2026-12-06). A value first seen at serving is
    ignored either way, as any unknown category is.
    """
    table = _metadata(df)
    varying = [column for column in table.columns if table[column].nunique() > 1]
    if not varying:
        return None
    return OneHotEncoder(handle_unknown="ignore", dtype=float).fit(table[varying])


def _rows_matrix(block: _Block, texts: list[str]) -> sp.csr_matrix:
    """One text block of ``transform`` built from :meth:`_Block.row` (same numbers)."""
    indptr: list[int] = [0]
    indices: list[int] = []
    data: list[float] = []
    for text in texts:
        columns, weights = block.row(text)
        indices.extend(j - block.offset for j in columns)
        data.extend(weights.tolist())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64), indptr),
        shape=(len(texts), block.width),
    )


MetaLookup = tuple[str, dict[str, int], int]  # (column, category → index, column offset)


def _meta_lookups(meta: OneHotEncoder, offset: int) -> tuple[MetaLookup, ...]:
    """The encoder's categories as dictionaries, each column's block after the last."""
    lookups = []
    for name, cats in zip(meta.feature_names_in_, meta.categories_, strict=True):
        lookups.append((name, {str(c): i for i, c in enumerate(cats)}, offset))
        offset += len(cats)
    return tuple(lookups)


@dataclass(frozen=True)
class _HashedVocabulary:
    """A vocabulary as two arrays: its terms' hashes (sorted) and their columns.

    About 12 bytes a term where a ``dict[str, int]`` takes ~110 (the string, the int, the
    table slot): the vocabularies are most of a served tag model's memory. Python's
    ``hash`` is salted per process, so this is built in the serving process from the
    pickled dictionary and never pickled. A token absent from the vocabulary matches a
    term only if their 64-bit hashes collide (~n_terms / 2**64 per token); two terms
    with one hash make :meth:`of` refuse, and the dictionary stays.
    """

    hashes: npt.NDArray[np.int64]
    columns: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def of(cls, vocabulary: dict[str, int]) -> _HashedVocabulary | None:
        n = len(vocabulary)
        hashes = np.fromiter(map(hash, vocabulary), dtype=np.int64, count=n)
        columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=n)
        order = np.argsort(hashes)
        hashes, columns = hashes[order], columns[order]
        if n > 1 and bool((hashes[1:] == hashes[:-1]).any()):
            return None
        return cls(hashes, columns.astype(np.int32) if n < 2**31 else columns)

    def lookup(self, tokens: list[str]) -> npt.NDArray[np.int64]:
        """The columns of the tokens that are terms (repeats kept, order not)."""
        if not tokens or not len(self.hashes):
            return np.zeros(0, dtype=np.int64)
        wanted = np.fromiter(map(hash, tokens), dtype=np.int64, count=len(tokens))
        at = np.searchsorted(self.hashes, wanted)
        at[at == len(self.hashes)] = 0
        found = self.hashes[at] == wanted
        columns: npt.NDArray[np.int64] = self.columns[at[found]].astype(np.int64)
        return columns


@dataclass(frozen=True)
class _Block:
    """One fitted TF-IDF vectorizer as plain lookups, for scoring one message at a time.

    ``vocabulary`` is the vectorizer's own dictionary, or ``None`` once the block is
    compacted for serving (``hashed`` then answers the lookups).
    """

    analyze: Callable[[str], list[str]]
    vocabulary: dict[str, int] | None
    idf: npt.NDArray[np.float64]
    sublinear: bool
    offset: int
    hashed: _HashedVocabulary | None = None

    @property
    def width(self) -> int:
        """Its number of columns (terms), from whichever lookup it holds."""
        return len(self.hashed if self.hashed is not None else self.vocabulary or {})

    @classmethod
    def of(cls, vectorizer: TfidfVectorizer, offset: int) -> _Block:
        # One dictionary for both paths: the vectorizer's own (numpy ints) is swapped for
        # the same mapping with Python ints, which ``transform`` reads as well. A second
        # copy was ~30% of a loaded model's memory (the vocabularies are most of it).
        vocabulary = {str(t): int(j) for t, j in vectorizer.vocabulary_.items()}
        vectorizer.vocabulary_ = vocabulary
        return cls(
            analyze=vectorizer.build_analyzer(),
            vocabulary=vocabulary,
            idf=np.asarray(vectorizer.idf_, dtype=np.float64),
            sublinear=bool(vectorizer.sublinear_tf),
            offset=offset,
        )

    def row(self, text: str) -> tuple[list[int], npt.NDArray[np.float64]]:
        """Column indices and weights of ``text``: what ``transform`` computes for one row
        (counts, 1 + log tf, × idf, L2 norm), in the same order of operations."""
        if self.hashed is not None:
            found, repeats = np.unique(self.hashed.lookup(self.analyze(text)), return_counts=True)
            columns = [int(j) for j in found]
            tf = repeats.astype(np.float64)
        else:
            assert self.vocabulary is not None
            counts = Counter(
                j for j in map(self.vocabulary.get, self.analyze(text)) if j is not None
            )
            columns = sorted(counts)
            tf = np.array([counts[j] for j in columns], dtype=np.float64)
        if not columns:
            return [], np.zeros(0)
        if self.sublinear:
            tf = np.log(tf) + 1.0
        weights = tf * self.idf[columns]
        norm = float(np.sqrt(np.dot(weights, weights)))
        if norm > 0:
            weights /= norm
        return [self.offset + j for j in columns], weights


@dataclass(frozen=True)
class OneRow:
    """The fitted transformers flattened to dictionaries and arrays.

    sklearn's ``transform`` validates and converts its input on every call: ~0.5 ms per
    vectorizer for the single message a serving request carries, ten times the work
    itself. This does the work alone; a test checks the columns equal ``transform``'s.
    """

    blocks: tuple[_Block, ...]
    meta: tuple[MetaLookup, ...]

    def features(self, text: str, metadata: dict[str, Any]) -> tuple[list[int], Any]:
        """(column indices, weights) of one message's feature row."""
        columns: list[int] = []
        weights: list[npt.NDArray[np.float64]] = []
        for block in self.blocks:
            cols, w = block.row(text)
            columns.extend(cols)
            weights.append(w)
        for name, lookup, offset in self.meta:
            value = metadata.get(name)
            index = lookup.get("unknown" if value is None or value != value else str(value))
            if index is not None:
                columns.append(offset + index)
                weights.append(np.ones(1))
        return columns, np.concatenate(weights) if weights else np.zeros(0)


@dataclass
class FeatureBuilder:
    """Fitted transformers; kept together so training and serving build identical columns."""

    word: TfidfVectorizer
    char: TfidfVectorizer | None
    meta: OneHotEncoder | None
    #: Built on first use and never pickled (see ``__getstate__``): derived, not learned.
    _one_row: OneRow | None = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        if self.compacted:
            raise TypeError("a FeatureBuilder compacted for serving cannot be pickled")
        state = dict(self.__dict__)
        state["_one_row"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("_one_row", None)  # models pickled before the one-row path
        self.__dict__.update(state)

    @property
    def one_row(self) -> OneRow:
        """The one-message view of these transformers (built once, then reused)."""
        if self._one_row is None:
            blocks = [_Block.of(self.word, 0)]
            offset = len(self.word.vocabulary_)
            if self.char is not None:
                blocks.append(_Block.of(self.char, offset))
                offset += len(self.char.vocabulary_)
            meta = _meta_lookups(self.meta, offset) if self.meta is not None else ()
            self._one_row = OneRow(tuple(blocks), meta)
        return self._one_row

    def compact(self) -> None:
        """Serving form: the text vocabularies become hashed arrays and their dictionaries
        are dropped (the bulk of a loaded tag model's memory). Transforms answer as before;
        the builder can no longer be pickled or refitted, so only the serving cache calls
        this, never a process that may log the model again."""
        if self.compacted:
            return
        row = self.one_row
        hashed = [_HashedVocabulary.of(b.vocabulary or {}) for b in row.blocks]
        if any(h is None for h in hashed):
            return  # two terms share a hash: keep the dictionaries
        blocks = tuple(
            replace(b, vocabulary=None, hashed=h) for b, h in zip(row.blocks, hashed, strict=True)
        )
        self._one_row = OneRow(blocks, row.meta)
        for vectorizer in (self.word, self.char):
            if vectorizer is not None:
                del vectorizer.vocabulary_

    @property
    def compacted(self) -> bool:
        """Whether :meth:`compact` replaced the vocabularies (the one-row view then holds
        the only lookups, and is never rebuilt)."""
        return self._one_row is not None and self._one_row.blocks[0].hashed is not None

    @classmethod
    def fit(cls, df: pd.DataFrame, config: TagModelConfig) -> FeatureBuilder:
        """``fit_transform`` without the features."""
        return cls.fit_transform(df, config)[0]

    @classmethod
    def fit_transform(
        cls, df: pd.DataFrame, config: TagModelConfig
    ) -> tuple[FeatureBuilder, sp.csr_matrix]:
        """Fit on the training messages only, so validation measures unseen vocabulary
        too, and return their features with the builder.

        The vectorizers count the training texts once; fitting, then transforming, counted
        them twice (0.7 of cooking's 15 training seconds). The weights can differ from
        ``transform``'s in the last bit: the vectorizer normalises rows before sorting
        their columns. Raises ValueError when the text has no usable term (sklearn's
        empty vocabulary).
        """
        texts = _texts(df)
        word = _word_vectorizer(config)
        blocks = [word.fit_transform(texts)]
        char = None
        if config.char_ngrams is not None:
            char = _char_vectorizer(config, config.char_ngrams)
            blocks.append(char.fit_transform(texts))
        meta = _fit_one_hot(df) if config.use_metadata else None
        builder = cls(word=word, char=char, meta=meta)
        if meta is not None:
            blocks.append(builder._one_hot(df))
        for block in blocks:
            block.sort_indices()
        return builder, sp.csr_matrix(sp.hstack(blocks, format="csr"))

    @property
    def n_features(self) -> int:
        if self.compacted:
            n = sum(block.width for block in self.one_row.blocks)
        else:
            n = len(self.word.vocabulary_)
            if self.char is not None:
                n += len(self.char.vocabulary_)
        if self.meta is not None:
            n += sum(len(c) for c in self.meta.categories_)
        return n

    def transform(self, df: pd.DataFrame) -> sp.csr_matrix:
        texts = _texts(df)
        if self.compacted:  # the one-row blocks, row by row
            blocks = [_rows_matrix(block, texts) for block in self.one_row.blocks]
        else:
            blocks = [self.word.transform(texts)]
            if self.char is not None:
                blocks.append(self.char.transform(texts))
        if self.meta is not None:
            blocks.append(self._one_hot(df))
        return sp.csr_matrix(sp.hstack(blocks, format="csr"))

    def _one_hot(self, df: pd.DataFrame) -> sp.csr_matrix:
        """``meta.transform(_metadata(df))``, by dictionary lookup.

        The encoder validates and converts a DataFrame on every call: ~1.6 ms for the
        single row a serving request carries, a quarter of its CPU. The lookup builds
        the same columns (each column's categories in the encoder's order, unknown
        values all-zero as ``handle_unknown="ignore"``); a test checks they are equal.
        """
        assert self.meta is not None
        rows: list[int] = []
        cols: list[int] = []
        lookups = _meta_lookups(self.meta, 0)
        for name, lookup, offset in lookups:
            for row, value in enumerate(_values(df, name, "unknown")):
                index = lookup.get(value)
                if index is not None:
                    rows.append(row)
                    cols.append(offset + index)
        width = sum(len(lookup) for _, lookup, _ in lookups)
        data = np.ones(len(rows), dtype=float)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(df), width))
