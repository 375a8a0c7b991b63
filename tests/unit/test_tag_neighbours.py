"""The nearest-neighbour vote that orders the hybrid's recent-tag top-up
(``TagModelConfig.knn_weights``), on the real tw_grammys collection."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialsuggest.config import load_settings
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.models.tags.choice import ALTERNATIVE
from socialsuggest.models.tags.neighbours import blend, vote, vote_one
from socialsuggest.training.metrics import evaluate_model
from socialsuggest.training.offline import load_labelled

# the learner short-message orgs get (``choice``), fitted without the choice: faster
CONFIG = replace(TagModelConfig(choose_learner=False), **ALTERNATIVE)
# (n_jobs=1: with more threads liblinear's shared random state makes two fits of the same
# data differ in the last digits, and one test compares two fits)


@pytest.fixture(scope="module")
def grammys() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """train.ft's first 85% / last 15% (validation), and the first 1,500 test rows."""
    root = load_settings().resolved_datasets_dir / "tags" / "tw_grammys"
    full = load_labelled(root / "train.ft", "fasttext")
    test = load_labelled(root / "test.ft", "fasttext").head(1500).reset_index(drop=True)
    cut = int(len(full) * 0.85)
    return full.iloc[:cut].reset_index(drop=True), full.iloc[cut:].reset_index(drop=True), test


@pytest.fixture(scope="module")
def voting(grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> TagModel:
    train, valid, _ = grammys
    return TagModel.fit(train, valid, CONFIG)


def test_validation_turns_the_vote_on_for_a_tweet_collection_and_keeps_its_reference(
    voting: TagModel, grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    train, valid, _ = grammys
    scores = dict(voting.knn_scores)
    assert list(scores) == [0.0, *CONFIG.knn_weights]
    assert voting.knn_weight in CONFIG.knn_weights
    assert scores[voting.knn_weight] > scores[0.0]  # it won on validation, not by default
    assert voting.knn_reference is not None and voting.knn_labels is not None
    n_reference = min(len(train) + len(valid), CONFIG.knn_reference_max)
    assert voting.knn_reference.shape == (voting.knn_width, n_reference)
    assert voting.knn_labels.shape == (n_reference, len(voting.knn_tags))
    # the vote covers the modelled tags, then every other tag seen: a tag too new or too
    # rare to model can still be voted into the top-up
    assert voting.knn_tags[: len(voting.tags)] == voting.tags
    seen = {t for rows in (train["tags"], valid["tags"]) for ts in rows for t in ts}
    assert set(voting.knn_tags) == seen and len(voting.knn_tags) > len(voting.tags)
    # the newest message is the reference's last row and carries its tags
    last = voting.knn_labels[-1].toarray()[0]
    assert {voting.knn_tags[j] for j in np.flatnonzero(last)} == set(valid["tags"].iloc[-1])


def test_without_weights_the_model_stores_no_messages(
    grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], voting: TagModel
) -> None:
    train, valid, test = grammys
    plain = TagModel.fit(train, valid, replace(CONFIG, knn_weights=()))
    assert plain.knn_weight == 0 and plain.knn_reference is None and plain.knn_scores == ()
    assert plain.knn_tags == ()
    assert plain.predict_votes(test) is None and plain.predict(test)[1] is None
    # the vote touches only the top-up: the classifier is the same fit
    np.testing.assert_array_equal(plain.predict_proba(test), voting.predict_proba(test))
    assert plain.suggest(test, mode="model") == voting.suggest(test, mode="model")


def test_the_reference_set_is_the_newest_messages_up_to_its_cap(
    grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid, _ = grammys
    capped = TagModel.fit(train, valid, replace(CONFIG, knn_weights=(0.2,), knn_reference_max=50))
    # one thread: deterministic, and this collection's validation picks 0.2 (first test)
    assert capped.knn_weight == 0.2
    assert capped.knn_reference is not None and capped.knn_labels is not None
    assert capped.knn_reference.shape[1] == 50
    y_valid = np.array([[t in row for t in capped.knn_tags] for row in valid["tags"].iloc[-50:]])
    np.testing.assert_array_equal(capped.knn_labels.toarray().astype(bool), y_valid)


def test_the_vote_reorders_only_the_recent_top_up(
    voting: TagModel, grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    """Model suggestions still need an enabled tag above its threshold; what the vote
    changes is which recent tags fill the slots, and it changes them on real rows."""
    test = grammys[2]
    proba, votes = voting.predict_proba(test), voting.predict_votes(test)
    assert votes is not None and votes.shape == (len(test), len(voting.knn_tags))
    assert np.all(votes >= 0) and np.all(votes.max(axis=1) <= 1 + 1e-9)
    both = voting.predict(test)  # one transform for both, as evaluation and suggest use
    np.testing.assert_array_equal(both[0], proba)
    assert both[1] is not None
    np.testing.assert_array_equal(both[1], votes)
    with_vote = voting.rank(proba, len(test), mode="hybrid", votes=votes)
    without = voting.rank(proba, len(test), mode="hybrid")
    column = {t: j for j, t in enumerate(voting.tags)}
    for i, row in enumerate(with_vote):
        for s in row:
            if s.source == "model":
                assert voting.tag_report[s.tag].enabled
                assert proba[i, column[s.tag]] >= voting.thresholds[column[s.tag]]
    changed = sum(a != b for a, b in zip(with_vote, without, strict=True))
    assert changed > 0.02 * len(test)
    # evaluation ranks as suggest does, vote included
    assert voting.suggest(test.head(300)) == with_vote[:300]
    report = evaluate_model(voting, test, k=3)
    gold = [frozenset(t) for t in test["tags"]]
    hits = np.mean([bool(gold[i] & {s.tag for s in row}) for i, row in enumerate(with_vote)])
    assert report["hybrid"]["hit_rate@3"] == pytest.approx(hits)


def test_archived_tags_are_never_voted_into_suggestions(
    voting: TagModel, grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    test = grammys[2]
    votes = voting.predict_votes(test)
    assert votes is not None
    inactive = [j for j, t in enumerate(voting.knn_tags) if not voting.tag_report[t].enabled]
    voted = sorted(inactive, key=lambda j: -votes[:, j].sum())[:5]  # the vote's favourites
    favourites = {voting.knn_tags[j] for j in voted}
    assert favourites & {s.tag for row in voting.suggest(test, k=5) for s in row}
    archived = voting.with_archived(favourites)
    shown = {s.tag for row in archived.suggest(test, k=5) for s in row}
    assert shown and not shown & favourites


def test_one_message_and_the_served_model_answer_as_the_batch(
    voting: TagModel, grammys: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    from socialsuggest.registry.pyfunc import TagSuggesterModel
    from socialsuggest.serving.cache import for_serving

    test = grammys[2].head(200)
    loaded = pickle.loads(pickle.dumps(voting))
    served = for_serving(TagSuggesterModel(pickle.loads(pickle.dumps(voting)))).model
    assert served.features is not None and served.features.compacted
    batch = voting.suggest(test, k=5)
    for i, row in enumerate(test.to_dict("records")):
        for m in (voting, loaded, served):
            one = m.suggest_one(str(row["text"]), row, k=5)
            assert [(s.tag, s.source) for s in one] == [(s.tag, s.source) for s in batch[i]]


def test_vote_is_the_similarity_weighted_share_of_the_k_nearest() -> None:
    rng = np.random.default_rng(0)
    ref = sp.random(40, 30, density=0.2, random_state=1, format="csr")
    some = sp.random(6, 30, density=0.2, random_state=2, format="csr")
    query = sp.vstack([some, sp.csr_matrix((1, 30))], format="csr")  # row 6 shares no term
    labels = sp.csr_matrix(rng.random((40, 5)) < 0.3, dtype=np.float32)
    got = vote(query, ref.T.tocsr(), labels, k=4)
    sims = (query @ ref.T).toarray()
    for i in range(6):
        nearest = np.argsort(-sims[i], kind="stable")[:4]
        want = sims[i, nearest] @ labels.toarray()[nearest] / sims[i, nearest].sum()
        np.testing.assert_allclose(got[i], want)
        np.testing.assert_allclose(vote_one(sims[i], labels, 4), want)
    np.testing.assert_array_equal(got[6], 0.0)
    np.testing.assert_allclose(blend(np.ones((2, 2)), np.zeros((2, 2)), 0.25), 0.75)


@pytest.mark.parametrize(
    ("field", "value"),
    [("knn_weights", (0.2, 1.5)), ("knn_weights", (0.0,)), ("knn_k", 0), ("knn_reference_max", 0)],
)
def test_bad_vote_settings_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TagModelConfig(**{field: value})  # type: ignore[arg-type]
