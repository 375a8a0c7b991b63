"""Hyper-parameters of the tag model, frozen so a trained model records exactly what built it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TagModelConfig:
    """Everything that shapes a tag model; defaults are the ones the benchmark supports.

    See ``benchmarks/reports/tags_accuracy.md`` for what each choice bought.
    """

    #: Tags with fewer positive training examples are not modelled (left to the recent
    #: list): a classifier from 4 examples is mostly noise and costs a fit per tag. The
    #: logistic words learner, which ``choose_learner`` may pick, models every tag used
    #: twice (``choice.ALTERNATIVE``: short messages, a long tail of rare hashtags).
    min_positives: int = 5
    #: A tag whose validation AUC lower bound is below this is switched off. 0.5 reads
    #: "better than chance at ``ci_level``": 0.6 switched off tags that rank well and
    #: had only a few validation positives (se_crypto NDCG@3 0.620 at 0.6, 0.629 at 0.5).
    auc_lower_bound: float = 0.5
    #: A modelled tag with fewer validation positives than this is gated on out-of-fold
    #: scores over train + validation instead: validation alone switched off a tag seen
    #: there once or twice for want of evidence. +0.012 NDCG@3 on cooking, +0.007
    #: se_biology, +0.004 se_crypto, +0.003 tw_covid19, +0.006 tw_grammys, for ~60% more
    #: training time (10 was no better than 5 and slower; 3 gave up half the gain).
    gate_cv_below: int = 5
    #: Contiguous folds of that cross-fitting (2 kept most of the gain on cooking for
    #: ~20% less time, and lost some on tw_covid19); below 2 = off.
    gate_cv_folds: int = 3
    #: Judge out of fold, too, a tag validation could not decide: its AUC there clears
    #: ``auc_lower_bound`` but the interval's lower end does not (lockdown on tw_covid19:
    #: 8 validation uses, AUC 0.65, interval [0.44, 0.85]). Every use in train +
    #: validation is then the evidence and the interval narrows; the bar is the same. A
    #: tag with no skill now has two looks at the bar, each passed by chance 2.5% of the
    #: time, so it passes at most 5% of the time (the union), not 2.5%. Chosen on two dev
    #: windows carved from train.ft (``tags_accuracy.py --split dev``: the newest 20%,
    #: and the 20% before it with what precedes; test.ft unread), hybrid NDCG@3 without
    #: -> with, 2026-12-06: tw_covid19 0.779 -> 0.786 and 0.798 -> 0.800, tw_grammys
    #: 0.825 -> 0.825 and 0.833 -> 0.834, se_crypto 0.635 -> 0.639 and 0.616 -> 0.621,
    #: cooking 0.663 -> 0.664 and 0.641 -> 0.643, se_biology 0.473 -> 0.476 and 0.448 ->
    #: 0.450; no gain below zero on either window, fit times within run-to-run noise.
    gate_cv_inconclusive: bool = True
    #: The fewest negatives a tag keeps in those fold fits (``min_negatives`` when that
    #: is smaller). The fold models only score held-out rows for a verdict and a
    #: threshold; every tag they let through is refitted with ``min_negatives``. Default
    #: config, one thread, against 2,000 (2026-12-06): hybrid NDCG@3 +0.0005 tw_covid19,
    #: -0.0005 tw_grammys, -0.0004 se_crypto, -0.0001 cooking, +0.0001 se_biology, for
    #: 20-35% less training time; 500 cost cooking 0.005.
    gate_cv_min_negatives: int = 1000
    #: Confidence level of the AUC interval (Hanley-McNeil).
    ci_level: float = 0.95
    #: Per-tag loss. ``squared_hinge`` (a linear SVM, L2 loss) ranks better across tags
    #: than ``logistic`` and fits in half the time (cooking NDCG@3 0.653 vs 0.616, 14 vs
    #: 29 s, stemmed); its margins become probabilities through one calibration per org.
    #: Not everywhere: on short tweets it is what we trail the plain LogisticRegression
    #: baseline by (``tags_gap.md``, its SVM step: +0.021 to +0.025 NDCG@3 on the
    #: StackExchange sets, -0.009 on tw_covid19, -0.002 on tw_grammys).
    loss: Literal["squared_hinge", "logistic"] = "squared_hinge"
    #: Inverse L2 strength of each per-tag model (the SVM: se_biology NDCG@3 0.459 at
    #: 0.3, 0.455 at 0.5, 0.449 at 1; the logistic loss wanted 10).
    C: float = 0.3
    #: Choose the learner per org on validation: this configuration and
    #: ``choice.ALTERNATIVE`` (logistic loss, C=10, unstemmed words only) are each fitted
    #: on train for the tags validation judges, the one whose hybrid NDCG@3 on validation
    #: is higher is finished (out-of-fold gate, refit), the other dropped. Which learner
    #: suits an org is a property of its messages (the SVM with char n-grams on long
    #: topical posts, the logistic words model on short tweets: ``tags_gap.md``), so no
    #: one default serves every org. Against False in the same run (``tags_accuracy.md``,
    #: 2026-12-04, 2 threads, Intel Xeon): tw_covid19 hybrid NDCG@3 0.689 -> 0.700 (paired
    #: interval [+0.006, +0.018] in a scratch run; logistic kept), tw_grammys 0.810 ->
    #: 0.811 (logistic), cooking, se_biology, se_crypto unchanged (SVM kept); training
    #: 2.6 -> 2.8 s and 3.8 -> 3.9 s on the tweet sets, +17-21% on the StackExchange sets
    #: (12.7 -> 14.8 s cooking, 10.1 -> 12.1 s se_biology, 6.7 -> 7.9 s se_crypto; rerun
    #: on the faster fit of the same day) for the probe of the other learner; the daily
    #: retrain pays that once a week (``RetrainPolicy.learner_recheck_days``).
    choose_learner: bool = True
    #: Snowball stemmer language for the word features (PyStemmer), None = raw words:
    #: "proteins" and "protein" share a column (+0.02 NDCG@3 on cooking and se_biology).
    stem_language: str | None = "english"
    #: Word n-gram range of the TF-IDF features.
    word_ngrams: tuple[int, int] = (1, 2)
    #: Character n-gram range (``char_wb``) appended to the word features; None = off.
    #: (3, 5) with the SVM: +0.019 NDCG@3 on se_biology, +0.004 on cooking over words
    #: alone (as good as (2, 5) at half its cost), for about 3x the training time.
    char_ngrams: tuple[int, int] | None = (3, 5)
    #: Terms seen in fewer messages are dropped. 1 keeps them: a term seen once still
    #: carries its tag's weight (+0.011 NDCG@3 on se_crypto, +0.004 on cooking over 2).
    #: It quadruples the vocabulary (cooking: 13k → 51k features), which pruned sparse
    #: coefficients (``prune_below``) make affordable.
    min_df: int = 1
    #: Coefficients smaller than this in absolute value are zeroed and the rest stored as
    #: a sparse matrix: a tag depends on few of the org's terms. At 0.05, 4-8% of the
    #: weights remain with no change in NDCG@3 on cooking and se_crypto, and cooking's
    #: model shrinks from 113 MiB dense to 9 MiB (0 keeps every weight, still sparse).
    prune_below: float = 0.05
    #: Cap on each vocabulary (word and char separately); bounds model size per org.
    #: 50k: the char vocabulary would otherwise take most of it (cooking's words: 51k).
    max_features: int | None = 50_000
    #: Scale features per tag by the NB log-count ratio (Wang & Manning 2012).
    nb_scaling: bool = False
    #: Laplace smoothing of the NB log-count ratio.
    nb_alpha: float = 1.0
    #: sklearn class_weight for each per-tag model. None keeps probabilities comparable
    #: across tags, which the cross-tag ranking needs.
    class_weight: Literal["balanced"] | None = None
    #: Per-tag negative subsampling (``linear.training_rows``): each tag is fitted on its
    #: positives and max(this x positives, ``min_negatives``) negatives, the
    #: ``hard_negative_share`` of them the most similar to the positives, the rest a
    #: weighted uniform draw. None = every negative. Against None in the same run
    #: (``tags_accuracy.md``, 2026-12-04, 2 threads): training 36 -> 16 s on cooking,
    #: 34 -> 20 se_biology, 19 -> 11 se_crypto, 5.0 -> 4.1 and 8.3 -> 6.9 on the tweet
    #: sets (few negatives to drop); hybrid NDCG@3 -0.004, -0.003, +0.001, 0.000, +0.001.
    #: 10 negatives a positive with 1,000 at least and half of them hard cost -0.008 to
    #: -0.013 on the StackExchange sets; 50 / 3,000 was no better than 30 / 2,000 and
    #: fits more rows on large orgs.
    negatives_per_positive: float | None = 30.0
    #: The fewest negatives a subsampled tag keeps; below it every negative is used.
    min_negatives: int = 2000
    #: Share of the kept negatives chosen by similarity rather than drawn at random.
    hard_negative_share: float = 0.8
    #: Suggestions shown per message.
    k: int = 3
    #: Half-life in days of the usage decay that orders the org's recent tags: a tag
    #: used often lately outranks one used once this morning (newest-first alone hit
    #: 7-15% at 3 on the benchmark corpora). None = order by last use only.
    recent_half_life_days: float | None = 7.0
    #: How many recent tags the hybrid considers when topping up; among them it shows
    #: the ones the classifier finds most likely for this message, so the slots below
    #: the thresholds go to recent tags that also fit the text. 1000 (in effect every tag
    #: of an org) made hybrid equal the model ranking on the StackExchange sets; 100 left
    #: out classifier tags the message fits (cooking NDCG@3 0.641 vs 0.655).
    recent_pool: int = 1000
    #: Beta of the F-beta score each per-tag threshold maximises on validation.
    threshold_beta: float = 2.0
    #: One-hot ``network`` and ``message_type`` appended to the text features (the ones
    #: that vary in training: ``features._fit_one_hot``). Off by default, as the original
    #: system had text only: where they say nothing about the tags they act as extra
    #: per-network intercepts, fitted from a rare tag's few uses, and cost the ranking.
    #: Values drawn at random (2026-12-06, one thread, hybrid NDCG@3 with vs without):
    #: cooking -0.008, se_crypto -0.007 (SVM learner), tw_grammys -0.010 (logistic
    #: learner; scaled to 0.3, -0.007). No corpus here carries real metadata, so what
    #: they buy an org whose tags do follow the network is unmeasured: turn it on there.
    use_metadata: bool = False
    #: After gating and thresholds are chosen on validation, refit each enabled tag on
    #: train + validation: validation is the newest data, the most like tomorrow's.
    refit_on_valid: bool = True
    #: liblinear stopping tolerance. 0.1 is liblinear's own default for both dual
    #: solvers; sklearn's 1e-4 buys nothing measurable on rankings and costs several
    #: times the time. Against 1e-2 (2026-12-04, 2 threads, tags_accuracy splits): hybrid
    #: NDCG@3 +0.0006 cooking, +0.0010 se_biology, +0.0006 se_crypto, -0.0003 tw_covid19,
    #: 0.0000 tw_grammys (every paired interval spans 0), training 7-12% faster (cooking
    #: 15.5 -> 14.1 s, tw_grammys 4.3 -> 3.8 s).
    tol: float = 0.1
    #: The daily cycle fits an org on its newest this many examples (train, validation
    #: and test together); None = the whole data window. It bounds the cost of the
    #: largest orgs, which otherwise bound the cycle: fit time grows as examples^1.2-1.6.
    #: 50k is 4x the largest benchmark corpus, so no number in the accuracy report
    #: depends on it, but it is a trade: at 8-10k examples a doubling still bought
    #: +0.024 to +0.036 NDCG@3 on the StackExchange sets (+0.014 tw_grammys, ~0
    #: tw_covid19; ``benchmarks/reports/tags_learning_curve.md``). Applied by the
    #: training job (``socialsuggest evaluate`` trains on the whole file given).
    max_examples: int | None = 50_000
    #: Weights of the nearest-neighbour vote (``neighbours``) in the hybrid's top-up,
    #: tried on validation. The top-up ranks the org's recent tags that no gate let
    #: through by their recency prior; with weight w it ranks them by ``(1 - w) · prior
    #: + w · vote``, the vote being the share of the ``knn_k`` most similar earlier
    #: messages that carried the tag. The weight (or none: 0 is always a candidate) with
    #: the best hybrid NDCG@3 on validation is kept; the gates, thresholds and model
    #: suggestions do not change. () = never. It stores the org's newest messages' word
    #: vectors with the model, so only where it wins. Against () in the same run
    #: (``tags_accuracy.md``, 2026-12-06, 2 threads): hybrid NDCG@3 tw_grammys 0.814 ->
    #: 0.819, tw_covid19 0.703 -> 0.706, cooking 0.670 -> 0.675, se_crypto 0.649 -> 0.651,
    #: se_biology 0.482 -> 0.483, for 0.7-3.1 s more training (a cooking profile: 1.4 s).
    #: Blending the vote into the scores of the tags the gates let through bought
    #: nothing (``tags_knn_blend.md``): its gain is in the tags they switch off.
    knn_weights: tuple[float, ...] = (0.2, 0.35, 0.5)
    #: Neighbours voting (30 was as good as 100 on the tweet sets and never chose a
    #: harmful weight on the StackExchange sites, where 100 did).
    knn_k: int = 30
    #: The newest this many training messages are the vote's reference set: it bounds
    #: the model's size and a request's cost (one sparse gather over them).
    knn_reference_max: int = 20_000
    #: Threads fitting per-tag models in parallel (liblinear releases the GIL); with
    #: more than one the refit also runs beside the neighbour vote's choice. Fits with
    #: more than one are not bit-reproducible: the threads share liblinear's random
    #: generator, which orders each fit's coordinate steps. The fan-outs train orgs in
    #: parallel processes with 1, so the models the daily cycle publishes are.
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.min_positives < 1:
            raise ValueError("min_positives must be >= 1")
        if not 0 < self.ci_level < 1:
            raise ValueError("ci_level must be in (0, 1)")
        if self.prune_below < 0:
            raise ValueError("prune_below must be >= 0")
        if self.loss not in ("squared_hinge", "logistic"):
            raise ValueError(f"loss must be squared_hinge or logistic, got {self.loss!r}")
        if self.stem_language is not None:
            import Stemmer  # PyStemmer

            if self.stem_language not in Stemmer.algorithms():
                raise ValueError(
                    f"stem_language: {self.stem_language!r} is not one of {Stemmer.algorithms()}"
                )
        if self.gate_cv_below < 0:
            raise ValueError("gate_cv_below must be >= 0")
        if self.gate_cv_min_negatives < 1:
            raise ValueError("gate_cv_min_negatives must be >= 1")
        if self.max_examples is not None and self.max_examples < 10:
            raise ValueError(f"max_examples must be None or >= 10, got {self.max_examples}")
        if self.negatives_per_positive is not None and self.negatives_per_positive <= 0:
            raise ValueError("negatives_per_positive must be None or > 0")
        if self.min_negatives < 1:
            raise ValueError("min_negatives must be >= 1")
        if not 0 <= self.hard_negative_share <= 1:
            raise ValueError("hard_negative_share must be in [0, 1]")
        if self.C <= 0:
            raise ValueError("C must be > 0")
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.recent_pool < 1:
            raise ValueError("recent_pool must be >= 1")
        if self.recent_half_life_days is not None and self.recent_half_life_days <= 0:
            raise ValueError("recent_half_life_days must be > 0 or None")
        if any(not 0 < w <= 1 for w in self.knn_weights):
            raise ValueError(f"knn_weights must each be in (0, 1], got {self.knn_weights}")
        if self.knn_k < 1:
            raise ValueError("knn_k must be >= 1")
        if self.knn_reference_max < 1:
            raise ValueError("knn_reference_max must be >= 1")
        if self.threshold_beta <= 0:
            raise ValueError("threshold_beta must be > 0")
        for name, rng in (("word_ngrams", self.word_ngrams), ("char_ngrams", self.char_ngrams)):
            if rng is not None and not 1 <= rng[0] <= rng[1]:
                raise ValueError(f"{name} must be (lo, hi) with 1 <= lo <= hi, got {rng}")
