"""The daily cycle of the suggested-replies family: per org, rank its saved replies.

Inputs are the lake's: cleaned inbound messages (``processed/tags``, the tag cycle's
Spark output), ``raw/reply_choices`` (which saved reply an agent chose) and
``raw/replies_sent`` (what agents sent: the bootstrap's input until choices exist).
Publishing is the shared :func:`pipeline.publishing.publish_candidate`: same gates,
registry conventions, reuse on re-runs, aliases and rollback as the other families.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.replies import ReplyModelConfig, evaluate_replies
from socialsuggest.pipeline.publishing import OrgOutcome, Publishable, Say, publish_each
from socialsuggest.processing.splits import load_examples
from socialsuggest.quality import GateConfig
from socialsuggest.registry import Registry
from socialsuggest.registry.pyfunc import ReplyRankerModel
from socialsuggest.training.policy import CONFIG_TAG, config_sha
from socialsuggest.training.replies import ReplyResult, labelled_messages, train_reply_org

log = logging.getLogger(__name__)
FAMILY = "replies"
GATE = GateConfig(compared=("macro_f1", "hit_rate_at_3"))
REVIEW_KEY = "_state/replies/review/{org}.json"
_EXAMPLE = pd.DataFrame([{"text": "my order never arrived, can you help?"}])


@dataclass
class RepliesCycleReport:
    orgs: list[OrgOutcome]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _raw(lake: Lake, dataset: str, org: str, columns: list[str]) -> pd.DataFrame:
    files = lake.files("raw", dataset, orgs=[org])
    if not files:
        return pd.DataFrame(columns=columns)
    frame: pd.DataFrame = lake.read(sorted(f.key for f in files), columns=columns).to_pandas()
    return frame


def reviewed_labels(lake: Lake, org: str) -> dict[str, str]:
    """Labels a person gave in the review round trip (reply message id -> template id)."""
    key = REVIEW_KEY.format(org=org)
    if not lake.storage.exists(key):
        return {}
    labels: dict[str, str] = json.loads(lake.storage.get(key))["labels"]
    return labels


def save_reviewed_labels(lake: Lake, org: str, labels: Mapping[str, str]) -> int:
    """Merge imported review labels into the org's (ids only: no text is stored)."""
    merged = {**reviewed_labels(lake, org), **labels}
    doc = {"org": org, "labels": dict(sorted(merged.items()))}
    lake.storage.put(REVIEW_KEY.format(org=org), json.dumps(doc, indent=1).encode())
    return len(merged)


def org_inputs(lake: Lake, org: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    messages = load_examples(lake, org).loc[:, ["message_id", "created_at", "text"]]
    choices = _raw(lake, "reply_choices", org, ["message_id", "reply_id", "at"])
    sent = _raw(lake, "replies_sent", org, ["reply_message_id", "message_id", "text", "sent_at"])
    return messages, choices.sort_values("at"), sent.sort_values("sent_at")


def reply_orgs(lake: Lake) -> list[str]:
    return sorted({f.org for d in ("reply_choices", "replies_sent") for f in lake.files("raw", d)})


def publishable(result: ReplyResult, tmp: Path) -> Publishable:
    assert result.model is not None and result.test is not None
    model, k = result.model, result.model.config.k
    model.texts, model.label_source = result.texts, result.label_source
    test_texts, test_labels = result.test["text"].tolist(), result.test["label"].tolist()
    report = pd.DataFrame(
        {
            "reply_id": model.replies,
            "examples": [model.counts.get(r, 0) for r in model.replies],
            "text": [model.texts.get(r, "") for r in model.replies],
        }
    )
    report_path = tmp / "replies.csv"
    report.to_csv(report_path, index=False)
    metrics = {k_: v for k_, v in result.metrics.items()}

    def score(loaded: Any) -> dict[str, float]:
        return evaluate_replies(loaded.model, test_texts, test_labels, k)

    golden = [{"text": t} for t in test_texts[:20]] + [{"text": "!!!"}, {"text": "x" * 10_000}]
    return Publishable(
        family=FAMILY,
        org=result.org,
        model=model,
        python_model=ReplyRankerModel(k=k),
        wrapped=ReplyRankerModel(model, k=k),
        input_example=_EXAMPLE,
        metrics={
            **metrics,
            **{f"rows.{c}": float(v) for c, v in result.counts.items()},
            "train_seconds": result.seconds,
        },
        gated={n: metrics[n] for n in GATE.compared if n in metrics},
        n_labels=len(model.replies),
        params=asdict(model.config),
        window=result.window,
        fingerprint=result.fingerprint,
        score_production=score,
        golden=golden,
        answer=lambda loaded, request: [r["reply_id"] for r in loaded.rank_one(request["text"])],
        allowed=frozenset(model.replies),
        artifacts={"replies": report_path},
        headline={
            n: metrics[n] for n in ("macro_f1", "accuracy_at_1", "hit_rate_at_3") if n in metrics
        },
        extra_tags={CONFIG_TAG: config_sha(model.config), "labels.source": result.label_source},
    )


def train_and_publish_replies(
    settings: Settings,
    registry: Registry,
    orgs: list[str] | None = None,
    *,
    dry_run: bool = False,
    config: ReplyModelConfig | None = None,
    gate_config: GateConfig | None = None,
    actor: str = "daily-cycle",
    say: Say | None = None,
) -> list[OrgOutcome]:
    """Label, train and publish every org's reply ranker (DAG task, CLI, tests)."""
    say = say or (lambda message: log.info("%s", message))
    lake = Lake.from_settings(settings)

    def train_one(org: str, note: Say) -> ReplyResult:
        messages, choices, sent = org_inputs(lake, org)
        labelled, source, boot = labelled_messages(
            messages, choices, sent, reviewed_labels(lake, org)
        )
        texts = {t.template_id: t.text for t in boot.templates} if boot else {}
        result = train_reply_org(org, labelled, source, texts, config)
        if boot is not None:
            note(f"bootstrap {boot.summary()}")
        return result

    return publish_each(
        FAMILY,
        orgs if orgs is not None else reply_orgs(lake),
        train_one,
        publishable,
        lambda r: f"{r.label_source} labels, {r.counts.get('n_replies', 0)} replies",
        registry=registry,
        gate_config=gate_config or GATE.budgeted(settings.gate_latency_budget_ms),
        dry_run=dry_run,
        actor=actor,
        say=say,
    )


def run_replies_cycle(
    settings: Settings,
    registry: Registry,
    *,
    orgs: list[str] | None = None,
    dry_run: bool = False,
    config: ReplyModelConfig | None = None,
    actor: str = "daily-cycle",
    say: Say | None = None,
) -> RepliesCycleReport:
    started = time.perf_counter()
    outcomes = train_and_publish_replies(
        settings, registry, orgs, dry_run=dry_run, config=config, actor=actor, say=say
    )
    return RepliesCycleReport(outcomes, round(time.perf_counter() - started, 1))
