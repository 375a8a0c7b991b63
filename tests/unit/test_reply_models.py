"""The replies family as pure units: label bootstrapping and the saved-reply ranker."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from socialsuggest.models.replies import (
    BootstrapConfig,
    ReplyModelConfig,
    ReplyRanker,
    bootstrap_labels,
    downsample,
    evaluate_replies,
    export_review,
    import_review,
    tokenise_names,
)
from socialsuggest.processing.text import clean_text

TEMPLATES = [
    "Hi {n}, sorry about the delay. Please DM us your booking reference and we will look into it.",
    "Thanks {n}! We are glad you enjoyed the flight, see you on board again soon.",
    "Hello {n}, your bag is being traced. Please send us the file number from the airport desk.",
]
ONE_OFFS = [
    "Our lounge in terminal 4 opens at 5am.",
    "That route is seasonal; it returns in May.",
    "Pets under 8kg can travel in the cabin in a soft carrier.",
    "Yes, the 7:40 to Denver has power outlets at every seat.",
    "We have passed your compliment on to the crew of flight 212!",
    "Infant fares are 10% of the adult fare on domestic routes.",
    "Check-in closes 45 minutes before departure for that airport.",
    "Gift cards can be used for bags and seats, not for upgrades.",
]
NAMES = ["Anna", "Bob", "Carla", "Dmitri", "Emeka", "Fatima", "Gus", "Hana"]


def _outgoing(seed: int = 0) -> tuple[list[str], list[int]]:
    """Replies agents typed from three habits, with names and small edits, plus one-offs."""
    rng = random.Random(seed)
    texts, truth = [], []
    for _ in range(60):
        t = rng.randrange(len(TEMPLATES))
        text = TEMPLATES[t].format(n=rng.choice(NAMES))
        if rng.random() < 0.3:
            text = text.replace("Please", "Could you please").replace("soon", "")
        texts.append(text)
        truth.append(t)
    for text in ONE_OFFS:
        texts.append(text)
        truth.append(-1)
    return texts, truth


def test_names_and_mentions_become_one_token() -> None:
    assert tokenise_names("Hi Anna, thanks!") == "Hi <name>, thanks!"
    assert tokenise_names("@bob_smith we're on it ^Kim") == "<name> we're on it ^<name>"
    assert tokenise_names("Thank you Carla for waiting") == "Thank you <name> for waiting"


def test_clusters_become_templates_and_replies_are_labelled_by_band() -> None:
    texts, truth = _outgoing()
    result = bootstrap_labels(texts, BootstrapConfig())
    assert len(result.templates) == 3
    assert all("<name>" in t.text for t in result.templates)
    assert all(t.score >= 80 for t in result.templates)
    # every auto-labelled reply agrees with the habit it was typed from
    by_template: dict[str, set[int]] = {}
    for i, template in result.labels.items():
        by_template.setdefault(template, set()).add(truth[i])
    assert all(len(habits) == 1 and -1 not in habits for habits in by_template.values())
    assert len(result.labels) >= 40
    # the lounge one-offs belong to no template: unlabelled, not forced into one
    assert all(i in result.unlabelled for i in range(60, 68))
    assert set(result.labels).isdisjoint(result.unlabelled)
    assert set(result.labels).isdisjoint(i for i, _, _ in result.review)


def test_the_review_queue_round_trips_through_csv_and_refuses_bad_rows() -> None:
    texts, _ = _outgoing(seed=3)
    config = BootstrapConfig(auto_label=99, unlabelled=60)  # force a middle band
    result = bootstrap_labels(texts, config)
    assert result.review
    ids = [f"r{i}" for i in range(len(texts))]
    exported = export_review(result, texts, ids)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == len(result.review) and all(r["label"] == "" for r in rows)
    rows[0]["label"] = rows[0]["template_id"]
    rows[1]["label"] = "tpl-999"
    rows[2]["label"] = "none"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    labels, errors = import_review(out.getvalue(), {t.template_id for t in result.templates})
    assert labels == {rows[0]["reply_id"]: rows[0]["template_id"]}
    assert errors == ["line 3: label: 'tpl-999' is not a template id"]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['label'\]"):
        import_review("reply_id,text\nr1,hello\n", set())


def test_downsampling_caps_the_majority_and_keeps_the_rest() -> None:
    labels = ["generic"] * 100 + ["a"] * 10 + ["b"] * 8
    keep = downsample(labels, ratio=2.0, seed=0)
    kept = [labels[i] for i in keep]
    assert kept.count("generic") == 20  # 2 x the median class (10)
    assert kept.count("a") == 10 and kept.count("b") == 8
    assert list(keep) == sorted(set(keep))  # each row once, in the original order
    assert list(downsample(labels, ratio=0, seed=0)) == list(range(len(labels)))


@pytest.fixture(scope="module")
def airline(datasets_dir: Path) -> tuple[list[str], list[str]]:
    path = datasets_dir / "raw" / "airline" / "airline_tweets_clean.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["airline"] == "Virgin America"]
    texts = [clean_text(r["text"]) for r in rows]
    labels = ["reply-" + (r["negativereason"] or r["airline_sentiment"]).lower() for r in rows]
    return texts, labels


def test_the_ranker_learns_replies_from_real_messages(airline: tuple[list[str], list[str]]) -> None:
    texts, labels = airline
    cut = int(len(texts) * 0.8)
    model = ReplyRanker.fit(texts[:cut], labels[:cut], ReplyModelConfig())
    metrics = evaluate_replies(model, texts[cut:], labels[cut:], k=3)
    common = max(set(labels[:cut]), key=labels[:cut].count)
    constant = sum(label == common for label in labels[cut:]) / len(labels[cut:])
    assert metrics["accuracy_at_1"] > constant
    assert 0 < metrics["macro_f1"] <= 1 and metrics["hit_rate_at_3"] >= metrics["accuracy_at_1"]
    ranked = model.rank(clean_text("my flight was delayed 3 hours and nobody told us"), k=3)
    assert len(ranked) == 3 and {r for r, _ in ranked} <= set(model.replies)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_one_usable_reply_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="ranking needs at least 2"):
        ReplyRanker.fit(["a b", "c d", "e f", "g h"], ["r1", "r1", "r1", "r2"])
