"""The daily cycle of the hashtag family: posts → embeddings per org → gates → registry.

preprocess posts (Spark, incremental) → per org: split by time, fit, evaluate both
suggesters on the newest posts → :func:`pipeline.publishing.publish_candidate` (same
gates, registry conventions, reuse on re-runs and aliases as the tag family). A
rejected or failed org keeps its production version serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.hashtags import Draft, HashtagModelConfig
from socialsuggest.models.hashtags.evaluate import evaluate_hashtags
from socialsuggest.pipeline.publishing import OrgOutcome, Publishable, Say, publish_each
from socialsuggest.processing.posts import FAMILY, load_posts, preprocess_posts
from socialsuggest.processing.spark import get_spark
from socialsuggest.quality import GateConfig
from socialsuggest.registry import Registry
from socialsuggest.registry.pyfunc import HashtagSuggesterModel
from socialsuggest.training.hashtags import HashtagResult, train_hashtag_org
from socialsuggest.training.policy import CONFIG_TAG, config_sha

log = logging.getLogger(__name__)
#: The endpoint's mode on the harder task (every hashtag hidden) is what is gated.
GATE = GateConfig(compared=("hidden.hybrid.hit_rate_at_3", "hidden.hybrid.ndcg_at_3"))
_EXAMPLE = pd.DataFrame([{"text": "new recipes for the weekend", "hashtags": ["baking"]}])


@dataclass
class HashtagsCycleReport:
    preprocess: dict[str, Any]
    orgs: list[OrgOutcome]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _golden(test: list[Draft], n: int = 20) -> list[dict[str, Any]]:
    """Drafts rebuilt from the newest posts (in memory only), plus edge cases."""
    drafts = [
        {"text": " ".join(d.words) or "?", "hashtags": list(d.hashtags[:1])} for d in test[:n]
    ]
    return [
        *drafts,
        {"text": "!!!", "hashtags": []},
        {"text": "x" * 10_000, "hashtags": ["#notahashtagweknow"]},
    ]


def _answer(loaded: Any, request: Mapping[str, Any]) -> list[str]:
    return [s["hashtag"] for s in loaded.suggest_one(request["text"], request["hashtags"])]


def _score_production(test: list[Draft], k: int) -> Callable[[Any], dict[str, float]]:
    def score(loaded: Any) -> dict[str, float]:
        metrics = evaluate_hashtags(loaded.model, test, k=k, modes=("hybrid",))
        return {
            f"{task}.{name}": v for task, values in metrics.items() for name, v in values.items()
        }

    return score


def publishable(result: HashtagResult, tmp: Path) -> Publishable:
    assert result.model is not None
    model, k = result.model, result.model.config.k
    flat = result.flat_metrics()
    report = pd.DataFrame(
        {
            "hashtag": model.hashtags,
            "uses": model.counts,
            "popular_rank": [
                model.popular.index(h) + 1 if h in model.popular else None for h in model.hashtags
            ],
        }
    )
    report_path = tmp / "hashtags.csv"
    report.to_csv(report_path, index=False)
    return Publishable(
        family=FAMILY,
        org=result.org,
        model=model,
        python_model=HashtagSuggesterModel(k=k),
        wrapped=HashtagSuggesterModel(model, k=k),
        input_example=_EXAMPLE,
        metrics={
            **flat,
            **{f"rows.{c}": float(v) for c, v in result.counts.items()},
            "train_seconds": result.seconds,
        },
        gated={name: flat[name] for name in GATE.compared if name in flat},
        headline={n: v for n, v in flat.items() if ".hybrid." in n},
        n_labels=len(model.hashtags),
        params=asdict(model.config),
        window=result.window,
        fingerprint=result.fingerprint,
        score_production=_score_production(result.test, k),
        golden=_golden(result.test),
        answer=_answer,
        allowed=frozenset(model.hashtags),
        artifacts={"hashtags": report_path},
        extra_tags={CONFIG_TAG: config_sha(model.config)},
        requirements=("numpy", "scipy", "pandas", "pyarrow", "scikit-learn"),
    )


def hashtag_orgs(lake: Lake) -> list[str]:
    return sorted({f.org for f in lake.files("processed", FAMILY)})


def train_and_publish_hashtags(
    settings: Settings,
    registry: Registry,
    orgs: list[str] | None = None,
    *,
    dry_run: bool = False,
    config: HashtagModelConfig | None = None,
    gate_config: GateConfig | None = None,
    actor: str = "daily-cycle",
    say: Say | None = None,
) -> list[OrgOutcome]:
    """Train every org's hashtag model from processed posts and publish it."""
    say = say or (lambda message: log.info("%s", message))
    lake = Lake.from_settings(settings)
    return publish_each(
        FAMILY,
        orgs if orgs is not None else hashtag_orgs(lake),
        lambda org, note: train_hashtag_org(org, load_posts(lake, org), config),
        publishable,
        lambda r: f"fit {r.seconds:.1f}s, {r.counts.get('n_hashtags', 0)} hashtags",
        registry=registry,
        gate_config=gate_config or GATE.budgeted(settings.gate_latency_budget_ms),
        dry_run=dry_run,
        actor=actor,
        say=say,
    )


def run_hashtags_cycle(
    settings: Settings,
    registry: Registry,
    *,
    orgs: list[str] | None = None,
    dry_run: bool = False,
    config: HashtagModelConfig | None = None,
    actor: str = "daily-cycle",
    say: Say | None = None,
) -> HashtagsCycleReport:
    """Preprocess posts, then train, gate, register and promote every org (CLI, DAG, tests)."""
    say = say or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    lake = Lake.from_settings(settings)
    pre = preprocess_posts(lambda: get_spark(settings), lake, settings=settings, progress=say)
    outcomes = train_and_publish_hashtags(
        settings, registry, orgs, dry_run=dry_run, config=config, actor=actor, say=say
    )
    return HashtagsCycleReport(pre.summary(), outcomes, round(time.perf_counter() - started, 1))
