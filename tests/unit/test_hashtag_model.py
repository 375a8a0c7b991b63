"""The hashtag family as a pure unit: parsing drafts, fitting, suggesting, evaluating."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from socialsuggest.models.hashtags import Draft, HashtagModel, HashtagModelConfig, parse_draft
from socialsuggest.models.hashtags.evaluate import evaluate_hashtags, one_given_task
from socialsuggest.models.hashtags.text import content_words, expand_contractions

SMALL = HashtagModelConfig(vector_size=32, epochs=10)


def _posts(path: Path, n: int) -> list[Draft]:
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines()[:n]:
        tokens = line.split()
        tags = tuple(dict.fromkeys(t[9:].lower() for t in tokens if t.startswith("__label__")))
        text = " ".join(t for t in tokens if not t.startswith("__label__"))
        posts.append(Draft(content_words(text), tags))
    return posts


@pytest.fixture(scope="module")
def grammys(datasets_dir: Path) -> tuple[list[Draft], list[Draft]]:
    folder = datasets_dir / "tags" / "tw_grammys"
    return _posts(folder / "train.ft", 2500), _posts(folder / "test.ft", 400)


@pytest.fixture(scope="module")
def model(grammys: tuple[list[Draft], list[Draft]]) -> HashtagModel:
    return HashtagModel.fit(grammys[0], SMALL)


def test_a_draft_loses_stop_words_and_contractions_and_keeps_its_hashtags_apart() -> None:
    draft = parse_draft("We can't WAIT for the #GRAMMYs tonight, don't miss it! #Music", ["#live"])
    assert draft.hashtags == ("grammys", "music", "live")
    assert draft.words == ("wait", "tonight", "miss")  # can/not/for/the/do/it are stop words
    assert expand_contractions("won't you're") == "will not you are"


def test_html_entities_and_urls_are_not_hashtags() -> None:
    draft = parse_draft("Tom &#38; Jerry https://x.co/a#frag @someone")
    assert draft.hashtags == ()
    assert "url" not in draft.words and "@user" not in draft.words


def test_suggestions_are_known_hashtags_never_the_drafts_own(model: HashtagModel) -> None:
    draft = parse_draft("who will win album of the year #grammys #neverheardofthis")
    suggested = model.suggest(draft, k=5)
    assert len(suggested) == 5
    names = [s.hashtag for s in suggested]
    assert "grammys" not in names and "neverheardofthis" not in names
    assert set(names) <= set(model.hashtags)
    assert suggested[0].source == "cooccurrence"
    scores = [s.score for s in suggested]
    assert scores == sorted(scores, reverse=True)


def test_a_draft_with_nothing_known_gets_the_popular_hashtags(model: HashtagModel) -> None:
    suggested = model.suggest(parse_draft("zzzqqq"), k=3)
    assert [s.hashtag for s in suggested] == model.popular[:3]
    assert {s.source for s in suggested} == {"popular"}
    assert model.suggest(parse_draft("zzzqqq"), k=3, mode="content") == []


def test_top_k_equals_a_full_sort(model: HashtagModel) -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=len(model.hashtags)).astype(np.float32)
    exclude = {int(np.argmax(scores))}
    expected = [int(i) for i in np.argsort(-scores) if int(i) not in exclude][:7]
    assert [i for i, _ in model.top(scores, 7, exclude)] == expected


def test_fitting_twice_gives_the_same_model(grammys: tuple[list[Draft], list[Draft]]) -> None:
    a = HashtagModel.fit(grammys[0][:600], SMALL)
    b = HashtagModel.fit(grammys[0][:600], SMALL)
    assert a.hashtags == b.hashtags
    np.testing.assert_array_equal(a.tag_vectors, b.tag_vectors)


def test_no_repeated_hashtag_means_a_clear_error() -> None:
    posts = [Draft(("words", "here"), (f"tag{i}",)) for i in range(10)]
    with pytest.raises(ValueError, match="no hashtag is used 2\\+ times"):
        HashtagModel.fit(posts, SMALL)


def test_a_blocked_hashtag_is_never_suggested(model: HashtagModel) -> None:
    blocked = set(model.popular[:2])
    trimmed = model.without(blocked)
    for text in ("album of the year", "zzzqqq", "best new artist #grammys"):
        assert not {s.hashtag for s in trimmed.suggest(parse_draft(text), k=10)} & blocked


def test_the_model_pickles_without_gensim(model: HashtagModel) -> None:
    restored = pickle.loads(pickle.dumps(model))
    draft = parse_draft("record of the year")
    assert restored.suggest(draft) == model.suggest(draft)
    assert "gensim" not in pickle.dumps(model).decode("latin-1")


def test_the_hybrid_beats_each_suggester_alone_on_held_out_posts(
    model: HashtagModel, grammys: tuple[list[Draft], list[Draft]]
) -> None:
    metrics = evaluate_hashtags(model, grammys[1], k=3)
    hidden = {m: metrics[f"hidden.{m}"]["ndcg_at_3"] for m in ("hybrid", "content", "popular")}
    assert hidden["hybrid"] > hidden["content"] and hidden["hybrid"] >= hidden["popular"]
    assert hidden["hybrid"] > 0.5  # most grammys posts carry the collection hashtag
    drafts, gold = one_given_task(grammys[1])
    assert all(len(d.hashtags) == 1 for d in drafts) and all(gold)
    assert metrics["one_given.hybrid"]["n"] == len(drafts)
