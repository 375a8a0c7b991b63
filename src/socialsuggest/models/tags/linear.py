"""One binary linear model per tag (L2-loss SVM or logistic regression), optional NB
scaling, F-beta thresholds.

Each tag gets its own liblinear fit rather than a shared multinomial model because tags
are not exclusive (a message carries several) and because gating, thresholds and
archiving all work per tag.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.svm import _liblinear  # type: ignore[attr-defined]

from socialsuggest.models.tags.config import TagModelConfig
from socialsuggest.training.metrics import ScoreGroups, score_groups

FloatArray = npt.NDArray[np.floating[Any]]
BoolArray = npt.NDArray[np.bool_]


def nb_log_count_ratio(x: sp.csr_matrix, y: BoolArray, alpha: float) -> FloatArray:
    """r = log((p/|p|₁) / (q/|q|₁)) with p, q the smoothed feature sums of positives/negatives.

    Wang & Manning (2012): scaling features by r before a linear model lets the words
    that separate this tag from the rest start with a head start over the common ones.
    """
    p = alpha + np.asarray(x[y].sum(axis=0)).ravel()
    q = alpha + np.asarray(x[~y].sum(axis=0)).ravel()
    return np.asarray(np.log((p / p.sum()) / (q / q.sum())), dtype=float)


def _fit_one(
    x: sp.csr_matrix, y: BoolArray, config: TagModelConfig, similarity: FloatArray | None = None
) -> tuple[FloatArray, float]:
    """Fit one tag; returns weights already expressed on the unscaled features.

    With NB scaling the model sees x·diag(r); since w·(x∘r) = (w∘r)·x, folding r into the
    weights lets every tag share one feature matrix at prediction time. ``similarity``:
    every row's similarity to the tag's positives (``training_rows``), when known.
    """
    ratio = nb_log_count_ratio(x, y, config.nb_alpha) if config.nb_scaling else None
    xs = x @ sp.diags(ratio) if ratio is not None else x
    rows, weights = training_rows(x, y, config, similarity)
    if rows is None:
        coef, intercept = liblinear_fit(xs, y, None, config)
    else:
        coef, intercept = liblinear_fit(xs[rows], y[rows], weights, config)
    if ratio is not None:
        coef = coef * ratio
    return coef, intercept


def training_rows(
    x: sp.csr_matrix, y: BoolArray, config: TagModelConfig, similarity: FloatArray | None = None
) -> tuple[npt.NDArray[np.intp] | None, FloatArray | None]:
    """The rows one tag is fitted on and their sample weights; (None, None) = all, unweighted.

    A tag is rare, so almost every row is a negative, and liblinear's time grows with the
    rows: a tag is fitted on its positives, the negatives most like them (by similarity
    to the positives' centroid: the ones that place the boundary, kept with weight 1) and
    a uniform draw of the rest, each drawn row weighted to stand for the undrawn ones, so
    the loss is still an unbiased estimate of the full one and the intercept keeps the
    tag's base rate. Seeded by the class sizes: the same data gives the same model in
    any process. ``similarity`` is every row's product with that centroid when the
    caller computed it with other tags' (``_similarities``), the same numbers.
    """
    pos = np.flatnonzero(y)
    neg = np.flatnonzero(~y)
    sizes = _sample_sizes(pos.size, neg.size, config)
    if sizes is None:
        return None, None
    keep, n_hard = sizes
    if n_hard and similarity is None:
        similarity = np.asarray(x @ _centroids(x, y[:, None])).ravel()
    by_similarity = (
        np.argpartition(-similarity[neg], n_hard - 1)
        if n_hard and similarity is not None
        else np.arange(neg.size)
    )
    hard = neg[by_similarity[:n_hard]]
    rest = neg[by_similarity[n_hard:]]
    n_drawn = keep - n_hard
    rng = np.random.default_rng([pos.size, neg.size])
    drawn = np.sort(rng.choice(rest, n_drawn, replace=False)) if n_drawn else rest[:0]
    rows = np.concatenate([pos, np.sort(hard), drawn])
    weights = np.ones(rows.size)
    if n_drawn:
        weights[pos.size + hard.size :] = rest.size / n_drawn
    return rows, weights


def _sample_sizes(n_pos: int, n_neg: int, config: TagModelConfig) -> tuple[int, int] | None:
    """(negatives kept, of them chosen by similarity) for a tag ``training_rows``
    subsamples; None for one fitted on every row (subsampling off, no positive, or no
    more negatives than it would keep). One rule for the subsampler and for
    ``_similarities``, which computes the similarities only for the tags that read them.
    """
    if config.negatives_per_positive is None or n_pos == 0:
        return None
    keep = max(int(config.negatives_per_positive * n_pos), config.min_negatives)
    if n_neg <= keep:
        return None
    return keep, int(keep * config.hard_negative_share)


def _reads_similarity(y: BoolArray, config: TagModelConfig) -> bool:
    """Whether ``training_rows`` picks hard negatives for this tag."""
    n_pos = int(y.sum())
    sizes = _sample_sizes(n_pos, y.size - n_pos, config)
    return sizes is not None and sizes[1] > 0


def _centroids(x: sp.csr_matrix, y: BoolArray) -> FloatArray:
    """The mean of each column's positive rows (features x columns): what a tag's hard
    negatives are most like.

    One sparse product for every column, ``(y / n)ᵀ x``: slicing each tag's positive
    rows and averaging them was two thirds of ``_similarities`` on a tweet set. Each
    entry adds the same terms in row order as ``x[y_j].mean(axis=0)`` (which scales
    by 1/n before summing), so the numbers are the same.
    """
    scale = sp.csr_matrix(y / y.sum(axis=0))
    return np.asarray((scale.T @ x).toarray().T)


#: Tags whose similarities are computed in one product (``_similarities``): a block
#: holds features x tags centroids, dense (100k features: 26 MB).
SIMILARITY_BLOCK = 32


def _similarities(
    x: sp.csr_matrix, y: npt.NDArray[np.bool_], config: TagModelConfig
) -> FloatArray | None:
    """Every row's similarity to each tag's centroid, for the tags that subsample (the
    other columns are 0), or None when none does.

    One product with the block of centroids reads the feature matrix once for the block
    instead of once per tag: each tag's product was an eighth of cooking's fit. It sums
    each row's terms in the same order, so the numbers are those of one tag's product.
    """
    wanted = [j for j in range(y.shape[1]) if _reads_similarity(y[:, j], config)]
    if not wanted:
        return None
    similarity = np.zeros(y.shape, dtype=float)
    similarity[:, wanted] = np.asarray(x @ _centroids(x, y[:, wanted]))
    return similarity


#: liblinear's solver ids for the two losses, both L2-regularised and solved in the dual
#: (coordinate descent): the fast path when features outnumber rows, as TF-IDF with
#: bigrams always does on one org's data. (``sklearn.svm._base._get_liblinear_solver_type``)
_SOLVER = {"squared_hinge": 1, "logistic": 7}
#: liblinear shuffles its coordinates; unseeded the same data trained in two processes
#: gave different models (and the Spark fan-out's metrics differed from the local pool's
#: in the third decimal). This is the seed sklearn passes for ``random_state=0``.
_SEED = int(np.random.RandomState(0).randint(np.iinfo("i").max))
_MAX_ITER = 1000
_liblinear.set_verbosity_wrap(0)


def liblinear_fit(
    x: sp.csr_matrix, y: BoolArray, weights: FloatArray | None, config: TagModelConfig
) -> tuple[FloatArray, float]:
    """One binary liblinear fit: (weights, intercept), bit for bit what ``LinearSVC`` /
    ``LogisticRegression(solver="liblinear")`` with ``dual=True, random_state=0`` and
    ``intercept_scaling=1`` return.

    Called directly because a tag's fit is small (a few thousand rows) and run 1,600
    times an org: the estimators' input checks were 30% of the SVM's fitting time on
    cooking (2026-12-05). ``tests/unit/test_tag_model.py`` holds this to the estimators,
    so a scikit-learn upgrade that changes the private entry point fails there.
    """
    if y.all() or not y.any():
        raise ValueError("y: a tag's fit needs both positive and negative rows")
    sample_weight = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64)
    class_weight = _class_weight(config.class_weight, y, sample_weight)
    x = x if x.dtype == np.float64 else x.astype(np.float64)
    raw, _ = _liblinear.train_wrap(
        x, y.astype(np.float64), True, _SOLVER[config.loss], config.tol, 1.0, config.C,
        class_weight, _MAX_ITER, _SEED, 0.1, sample_weight,
    )  # fmt: skip
    return np.asarray(raw[0, :-1], dtype=float), float(raw[0, -1])


def _class_weight(
    kind: Literal["balanced"] | None, y: BoolArray, sample_weight: FloatArray
) -> FloatArray:
    """``compute_class_weight(kind, classes=[False, True], y=y, sample_weight=...)``,
    computed here: its parameter validation was a tenth of a tweet set's fit, which
    makes a thousand small fits. ``test_tag_model.py`` holds the fit to the estimators
    for both kinds."""
    if kind is None:
        return np.ones(2)
    counts = np.bincount(y.astype(np.intp), weights=sample_weight, minlength=2)
    return np.asarray(counts.sum() / (2 * counts), dtype=np.float64)


def kept(weights: npt.NDArray[np.float32], below: float) -> BoolArray:
    """Which weights a pruned model keeps: those of at least ``below`` in absolute
    value, or every non-zero one when ``below`` is 0.

    One rule for both places that prune: ``fit_tags``, as each tag's fit returns, and
    the fold models' mean, which is pruned only once it is summed.
    """
    return np.abs(weights) >= below if below > 0 else weights != 0


def fit_tags(
    x: sp.csr_matrix, y: BoolArray, config: TagModelConfig, below: float = 0.0
) -> tuple[sp.csc_matrix, FloatArray]:
    """Fit every column of the indicator matrix ``y``.

    Returns (coef, intercepts): coef is (n_features, n_tags), single precision, holding
    each tag's weights of at least ``below`` in absolute value (0: every non-zero one),
    as CSC: ``x @ coef`` is one sparse product for all tags, and a tag depends on few
    of an org's terms. Each tag is pruned as its fit returns. A dense matrix of every
    weight, pruned afterwards, was 173 MB for cooking's 554 tags (2,000 tags of a
    100k-feature org: 800 MB) and took 2 of its 19 training seconds to write and scan.
    """
    n_features, n_tags = x.shape[1], y.shape[1]
    intercept = np.zeros(n_tags, dtype=float)
    rows: list[npt.NDArray[np.intp]] = []
    weights: list[npt.NDArray[np.float32]] = []

    def fit_block(
        block: range,
    ) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.float32], float]]:
        similarity = _similarities(x, y[:, block.start : block.stop], config)
        fitted = []
        for c, j in enumerate(block):
            w, b = _fit_one(x, y[:, j], config, None if similarity is None else similarity[:, c])
            w32 = w.astype(np.float32)
            keep = np.flatnonzero(kept(w32, below))
            fitted.append((keep, w32[keep], b))
        return fitted

    blocks = [
        range(start, min(start + SIMILARITY_BLOCK, n_tags))
        for start in range(0, n_tags, SIMILARITY_BLOCK)
    ]
    with ThreadPoolExecutor(max_workers=max(1, config.n_jobs)) as pool:
        for block, fitted in zip(blocks, pool.map(fit_block, blocks), strict=True):
            for j, (keep, w, b) in zip(block, fitted, strict=True):
                rows.append(keep)
                weights.append(w)
                intercept[j] = b
    indptr = np.zeros(n_tags + 1, dtype=np.int64)
    np.cumsum([r.size for r in rows], out=indptr[1:])
    coef = sp.csc_matrix(
        (
            np.concatenate(weights) if weights else np.zeros(0, dtype=np.float32),
            np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp),
            indptr,
        ),
        shape=(n_features, n_tags),
    )
    return coef, intercept


def best_threshold(
    y: BoolArray, scores: FloatArray, beta: float, groups: ScoreGroups | None = None
) -> tuple[float, float]:
    """The score cut maximising F-beta on these examples, and that F-beta.

    The optimum always sits at some positive's score, so scanning the scores in
    descending order (ties kept together) is exact. Needs at least one positive.
    ``groups`` is ``score_groups(scores)`` when the caller has it already.
    """
    values, group, size = groups if groups is not None else score_groups(scores)
    positives = np.bincount(group, weights=y, minlength=values.size)
    tp = np.cumsum(positives[::-1])  # cuts from the highest score down, ties together
    fp = np.cumsum(size[::-1]) - tp
    fn = int(y.sum()) - tp
    b2 = beta * beta
    f = (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp)
    best = int(np.argmax(f))
    return float(values[::-1][best]), float(f[best])
