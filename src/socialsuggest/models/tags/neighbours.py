"""A nearest-neighbour vote over an org's own earlier messages: how often the messages
most like this one carried each tag (``TagModelConfig.knn_weights``).

Why: short-message orgs repeat themselves (a news link shared many times, a campaign's
wording reused), and a per-tag linear model only partly exploits it.
``benchmarks/reports/tags_knn_blend.md`` measured the vote blended into every tag's
score: its gain on the tweet sets (+0.003 / +0.004 NDCG@3) was all in tags the AUC
gates switch off, or too rare to model. So the model uses it only to order the
hybrid's recent-tag top-up (``TagModel._fit_neighbours``). Similarity is cosine over
the word TF-IDF block of the model's own features (rows are L2-normalised per block),
so no second vectorizer is fitted or stored. Pure: arrays in, arrays out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.floating[Any]]
#: Query rows scored at once: a chunk holds rows × reference similarities.
_CHUNK = 1024


def vote(
    query: sp.csr_matrix, reference_t: sp.csr_matrix, labels: sp.csr_matrix, k: int
) -> FloatArray:
    """Per tag, the similarity-weighted share of the ``k`` reference messages most like
    each query row that carry it: (n_query, n_tags), each value in [0, 1].

    ``reference_t`` is the reference messages' features transposed (n_features,
    n_reference), ``labels`` their tags (n_reference, n_tags). A row with no
    similar message (no shared term) votes for nothing.
    """
    n_tags = labels.shape[1]
    out = np.zeros((query.shape[0], n_tags))
    if reference_t.shape[1] == 0:
        return out
    for start in range(0, query.shape[0], _CHUNK):
        sims = np.asarray((query[start : start + _CHUNK] @ reference_t).toarray())
        out[start : start + _CHUNK] = _shares(sims, labels, k)
    return out


def _shares(sims: FloatArray, labels: sp.csr_matrix, k: int) -> FloatArray:
    """``vote`` for one chunk of similarity rows: the ``k`` best of each row, as the
    weights of a sparse (rows, reference) matrix multiplied into the labels."""
    n, m = sims.shape
    kk = min(k, m)
    if kk == 0:
        return np.zeros((n, labels.shape[1]))
    sims = np.maximum(sims, 0.0)
    keep = (
        np.argpartition(-sims, kk - 1, axis=1)[:, :kk] if kk < m else np.tile(np.arange(m), (n, 1))
    )
    top = np.take_along_axis(sims, keep, axis=1)
    total = top.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    weights = sp.csr_matrix(
        ((top / total).ravel(), keep.ravel(), np.arange(0, n * kk + 1, kk)), shape=(n, m)
    )
    return np.asarray((weights @ labels).toarray(), dtype=float)


def vote_one(sims: FloatArray, labels: sp.csr_matrix, k: int) -> FloatArray:
    """``vote`` for one message whose similarities to the reference are ``sims``: the
    serving path. Building a sparse matrix for one row and multiplying it cost more than
    the rest of a request's model call (0.3-0.75 ms, 2026-12-06), so the ``k``
    neighbours' label rows are summed by ``weighted_row_sum``."""
    n_tags = labels.shape[1]
    sims = np.maximum(sims, 0.0)
    kk = min(k, sims.size)
    if kk == 0:
        return np.zeros(n_tags)
    keep = np.argpartition(-sims, kk - 1)[:kk] if kk < sims.size else np.arange(sims.size)
    top = sims[keep]
    return weighted_row_sum(labels, keep, top / (float(top.sum()) or 1.0))


def weighted_row_sum(matrix: sp.csr_matrix, rows: npt.ArrayLike, weights: FloatArray) -> FloatArray:
    """``weights @ matrix[rows]`` for a few rows of a CSR matrix, as a dense float64 row.

    The rows' slices are gathered and summed per column with ``bincount``: scipy's row
    indexing costs ~0.1 ms a call, ten times this, and a request makes one or two (the
    tag scores, the neighbour vote). Products are taken in the dtypes given, so a
    caller that wants float32 arithmetic (the served coefficients) passes float32
    ``weights``."""
    n_cols = matrix.shape[1]
    rows = np.asarray(rows, dtype=np.int64)
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = ends - starts
    if not rows.size or not lengths.sum():
        return np.zeros(n_cols)
    positions = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
    products = matrix.data[positions] * np.repeat(weights, lengths)
    return np.asarray(
        np.bincount(matrix.indices[positions], weights=products, minlength=n_cols), dtype=float
    )


def blend(proba: FloatArray, votes: FloatArray, weight: float) -> FloatArray:
    """``(1 - weight) · proba + weight · votes``: both are in [0, 1], so the blend stays
    a probability-like score the hybrid can weigh against recency priors."""
    if weight == 0:
        return proba
    return np.asarray((1.0 - weight) * proba + weight * votes, dtype=float)
