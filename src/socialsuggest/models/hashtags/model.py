"""Hashtag suggestion for a drafted post: skip-gram embeddings of words and hashtags.

What the original service did, two suggesters over one embedding space learned from
the org's own posts (every word and hashtag of a post is in every other's window):

* **co-occurrence** -- from the hashtags already in the draft: the hashtags whose
  skip-gram vectors are nearest (cosine) the mean of theirs;
* **content** -- for any draft: each hashtag is represented by the mean (unit) vector
  of the words that occurred with it, and the hashtags nearest the mean vector of the
  draft's words are suggested.

The endpoint's ``hybrid`` adds both cosines to a popularity prior (how often the org
used the hashtag), as the tag family tops up with recent tags: alone, the embeddings
ignore that a few hashtags carry most posts, and a draft with no known word still
gets something an editor can pick. The evaluation reports each part alone too.

Only numpy arrays are kept after :meth:`HashtagModel.fit`: gensim is needed to train,
not to serve, and a search is one matrix-vector product over every hashtag plus an
``argpartition`` (exact: p50 0.03 ms for 1k hashtags of 64 dims, 1.9 ms for 50k,
10 ms for 200k, measured on the 2-core machine), so no approximate index is needed at
an org's scale.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse

from socialsuggest.models.hashtags.text import Draft

Source = Literal["cooccurrence", "content", "popular"]
Mode = Literal["hybrid", "cooccurrence", "content", "popular"]
Matrix = npt.NDArray[np.float32]
_PREFIX = "#"


@dataclass(frozen=True)
class HashtagModelConfig:
    """Defaults chosen on the tweet collections (``benchmarks/hashtags_accuracy.py``)."""

    vector_size: int = 64
    #: Wider than any post after stop words: every token is in every other's context.
    window: int = 40
    #: Words seen fewer times get no vector (they would be noise, and personal).
    min_word_count: int = 2
    #: Hashtags used fewer times are not suggested.
    min_hashtag_count: int = 2
    epochs: int = 30
    negative: int = 5
    sample: float = 1e-3
    #: Weight of the popularity prior in the hybrid score (cosines are in [-1, 1]):
    #: 0.6 / 1.0 / 1.5 / 2.0 gave NDCG@3 0.802 / 0.791 / 0.784 / 0.777 (grammys, hidden)
    #: and 0.351 / 0.462 / 0.472 / 0.453 (grammys, one given); 1.0 is the compromise.
    prior_weight: float = 1.0
    #: How many of the org's most used hashtags the model lists (``popular``).
    popular: int = 20
    k: int = 3
    seed: int = 0


@dataclass(frozen=True)
class HashtagSuggestion:
    hashtag: str
    score: float
    source: Source


def _stable_hash(text: str) -> int:
    """gensim seeds each vector from a hash of its word: Python's ``hash`` differs per
    process, and two workers would train two different models from the same posts."""
    return zlib.crc32(text.encode())


def _unit(rows: Matrix) -> Matrix:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class HashtagModel:
    """Fitted embeddings of one org: words, hashtags, and the two search matrices."""

    def __init__(
        self,
        config: HashtagModelConfig,
        words: dict[str, int],
        word_vectors: Matrix,
        hashtags: list[str],
        tag_vectors: Matrix,
        content_vectors: Matrix,
        counts: npt.NDArray[np.int64],
        popular: list[str],
    ) -> None:
        self.config = config
        self.words = words
        self.word_vectors = word_vectors
        self.hashtags = hashtags
        self.index = {h: i for i, h in enumerate(hashtags)}
        self.tag_vectors = tag_vectors
        self.content_vectors = content_vectors
        self.counts = counts
        self.popular = popular
        # once, not per request: a log over every hashtag is as costly as the search
        logged = np.log1p(counts).astype(np.float32)
        self.prior: Matrix = logged / max(float(logged.max()), 1e-9) if len(logged) else logged

    # ---- training -------------------------------------------------------------------
    @classmethod
    def fit(cls, posts: Sequence[Draft], config: HashtagModelConfig | None = None) -> HashtagModel:
        """Train on posts (words and hashtags); raises ValueError if nothing can be learned."""
        from gensim.models import Word2Vec  # training only: serving never imports gensim

        config = config or HashtagModelConfig()
        counts = Counter(h for post in posts for h in set(post.hashtags))
        kept = sorted(h for h, n in counts.items() if n >= config.min_hashtag_count)
        if not kept:
            raise ValueError(
                f"posts: no hashtag is used {config.min_hashtag_count}+ times "
                f"in {len(posts)} posts: nothing to suggest"
            )
        sentences = [[*p.words, *(_PREFIX + h for h in p.hashtags)] for p in posts]
        w2v = Word2Vec(
            sentences=[s for s in sentences if len(s) > 1],
            vector_size=config.vector_size,
            window=config.window,
            shrink_windows=False,
            min_count=min(config.min_word_count, config.min_hashtag_count),
            sg=1,
            negative=config.negative,
            sample=config.sample,
            epochs=config.epochs,
            seed=config.seed,
            workers=1,  # one thread is what makes a seeded run reproducible
            hashfxn=_stable_hash,
        )
        keys = w2v.wv.key_to_index
        word_counts = Counter(w for p in posts for w in p.words)
        vocab = sorted(
            w for w in keys if not w.startswith(_PREFIX) and word_counts[w] >= config.min_word_count
        )
        words = {w: i for i, w in enumerate(vocab)}
        word_vectors = _unit(
            np.asarray([w2v.wv[w] for w in vocab], dtype=np.float32)
            if vocab
            else np.zeros((0, config.vector_size), np.float32)
        )
        hashtags = [h for h in kept if _PREFIX + h in keys]
        if not hashtags:
            raise ValueError("posts: no hashtag got an embedding (too few posts)")
        tag_vectors = _unit(np.asarray([w2v.wv[_PREFIX + h] for h in hashtags], np.float32))
        content = _content_vectors(posts, words, word_vectors, hashtags)
        ordered = sorted(hashtags, key=lambda h: (-counts[h], h))
        return cls(
            config,
            words,
            word_vectors,
            hashtags,
            tag_vectors,
            content,
            np.asarray([counts[h] for h in hashtags], dtype=np.int64),
            ordered[: config.popular],
        )

    # ---- suggesting -------------------------------------------------------------------
    def draft_vector(self, words: Sequence[str]) -> Matrix | None:
        rows = [self.words[w] for w in words if w in self.words]
        if not rows:
            return None
        mean = self.word_vectors[rows].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return (mean / norm).astype(np.float32) if norm > 0 else None

    def suggest(
        self, draft: Draft, k: int | None = None, mode: Mode = "hybrid"
    ) -> list[HashtagSuggestion]:
        """Hashtags for a draft, best first; unknown hashtags in the draft are ignored.

        ``hybrid`` (the endpoint) adds the two suggesters' cosines and the hashtag's
        popularity prior, log(1 + uses) scaled to [0, 1], weighted ``prior_weight``:
        on the tweet collections the plain nearest neighbours score NDCG@3 0.10-0.15,
        since they ignore that a few hashtags carry most posts; with the prior, 0.70-0.79
        (benchmarks/reports/hashtags_accuracy.md). The other modes are each suggester
        alone, for evaluation.
        """
        k = k or self.config.k
        known = [self.index[h] for h in draft.hashtags if h in self.index]
        scores = np.zeros(len(self.hashtags), dtype=np.float32)
        source: Source = "popular"
        if known and mode in ("hybrid", "cooccurrence"):
            scores += self.tag_vectors @ _unit(self.tag_vectors[known].mean(axis=0)[None])[0]
            source = "cooccurrence"
        vector = self.draft_vector(draft.words)
        if vector is not None and mode in ("hybrid", "content"):
            scores += self.content_vectors @ vector
            source = "content" if source == "popular" else source
        if mode in ("hybrid", "popular"):
            scores += self.config.prior_weight * self.prior
        if mode in ("content", "cooccurrence") and source == "popular":
            return []  # the suggester alone has no input (no known word or hashtag)
        return [
            HashtagSuggestion(self.hashtags[i], round(score, 6), source)
            for i, score in self.top(scores, k, set(known))
        ]

    def top(self, scores: Matrix, k: int, exclude: set[int]) -> list[tuple[int, float]]:
        """Exact top ``k`` of one score per hashtag: an ``argpartition``, no sort of all."""
        want = min(len(scores), k + len(exclude))
        if want <= 0:
            return []
        top = np.argpartition(-scores, want - 1)[:want]
        ranked = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in ranked if int(i) not in exclude][:k]

    def suggest_many(
        self, drafts: Sequence[Draft], k: int | None = None, mode: Mode = "hybrid"
    ) -> list[list[HashtagSuggestion]]:
        return [self.suggest(d, k, mode) for d in drafts]

    def without(self, blocked: set[str]) -> HashtagModel:
        """The same model that never suggests ``blocked`` (a hashtag an org retired)."""
        keep = [i for i, h in enumerate(self.hashtags) if h not in blocked]
        return HashtagModel(
            self.config,
            self.words,
            self.word_vectors,
            [self.hashtags[i] for i in keep],
            self.tag_vectors[keep],
            self.content_vectors[keep],
            self.counts[keep],
            [h for h in self.popular if h not in blocked],
        )

    def summary(self) -> dict[str, int]:
        return {
            "n_hashtags": len(self.hashtags),
            "n_words": len(self.words),
            "vector_size": int(self.tag_vectors.shape[1]),
        }


def _content_vectors(
    posts: Sequence[Draft], words: dict[str, int], word_vectors: Matrix, hashtags: list[str]
) -> Matrix:
    """Per hashtag, the mean unit vector of every word occurrence in its posts."""
    index = {h: i for i, h in enumerate(hashtags)}
    w_rows, w_cols, t_rows, t_cols = [], [], [], []
    for p, post in enumerate(posts):
        for w in post.words:
            if w in words:
                w_rows.append(p)
                w_cols.append(words[w])
        for h in set(post.hashtags):
            if h in index:
                t_rows.append(index[h])
                t_cols.append(p)
    n = len(posts)
    post_words = sparse.csr_matrix(
        (np.ones(len(w_rows), np.float32), (w_rows, w_cols)), shape=(n, len(words))
    )
    tag_posts = sparse.csr_matrix(
        (np.ones(len(t_rows), np.float32), (t_rows, t_cols)), shape=(len(hashtags), n)
    )
    sums = tag_posts @ (post_words @ word_vectors)
    return _unit(np.asarray(sums, dtype=np.float32))
