"""A nearest-neighbour vote over an org's own earlier messages: how often the messages
most like this one carried each tag (``TagModelConfig.knn_weights``).

Why: short-message orgs repeat themselves (a news link shared many times, a campaign's
wording reused), and a per-tag linear model only partly exploits it.
``benchmarks/reports/tags_knn_blend.md`` measured the vote blended into every tag's
score: the whole gain (+0.003 / +0.004 NDCG@3 on the tweet sets) was in tags the AUC
gates switch off, so the model uses it only to order the hybrid's recent-tag top-up
(``TagModel._fit_neighbours``). Similarity is cosine over the word TF-IDF block of the
model's own features (rows are L2-normalised per block), so no second vectorizer is
fitted or stored. Pure: arrays in, arrays out.
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
    each query row that carry it: (n_query, n_tags), each row summing to at most 1.

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
    """``vote`` for one chunk of similarity rows."""
    sims = np.maximum(sims, 0.0)
    if k < sims.shape[1]:
        keep = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.zeros_like(sims)
        np.put_along_axis(top, keep, np.take_along_axis(sims, keep, axis=1), axis=1)
        sims = top
    total = sims.sum(axis=1, keepdims=True)
    total[total == 0] = 1.0
    shares = sp.csr_matrix(sims / total) @ labels.astype(np.float64)
    return np.asarray(shares.toarray(), dtype=float)


def vote_one(sims: FloatArray, labels: sp.csr_matrix, k: int) -> FloatArray:
    """``vote`` for one message whose similarities to the reference are ``sims``: the
    serving path (a request's row is scored by gathering, not a sparse product)."""
    row: FloatArray = _shares(sims.reshape(1, -1), labels, k)[0]
    return row


def blend(proba: FloatArray, votes: FloatArray, weight: float) -> FloatArray:
    """``(1 - weight) · proba + weight · votes``: both are in [0, 1], so the blend stays
    a probability-like score the hybrid can weigh against recency priors."""
    if weight == 0:
        return proba
    return np.asarray((1.0 - weight) * proba + weight * votes, dtype=float)
