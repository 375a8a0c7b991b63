"""The daily cycle of the tag family after ingest.

preprocess (Spark, incremental) → train every org (fan-out) → evaluate production
on the candidate's test window → gate → log + register (accepted or rejected, with
reasons) → ``staging`` → ``production``. A rejected or failed org keeps its current
production version serving; ``dry_run`` trains and gates but moves no alias.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

from socialsuggest.config import Settings
from socialsuggest.lake import Lake
from socialsuggest.models.tags import TagModel, TagModelConfig
from socialsuggest.pipeline.publishing import (
    FINGERPRINT_TAG,
    OrgOutcome,
    check_incumbent,
    record_integration,
    verdict,
)
from socialsuggest.privacy.retrain import RetrainQueue
from socialsuggest.processing.spark import get_spark
from socialsuggest.processing.splits import load_examples, load_tag_lifecycle
from socialsuggest.processing.tags import preprocess_tags
from socialsuggest.quality import GateConfig, model_gate
from socialsuggest.quality.integration import GateServer, TagVocabulary, integration_gate
from socialsuggest.registry import (
    STAGING,
    Candidate,
    Registry,
    VersionInfo,
    model_name,
)
from socialsuggest.registry.pyfunc import TagSuggesterModel
from socialsuggest.training.fanout import (
    Engine,
    processed_orgs,
    train_orgs_local,
    train_orgs_spark,
)
from socialsuggest.training.job import OrgResult, archive_in_model
from socialsuggest.training.metrics import evaluate_model
from socialsuggest.training.plots import training_plots
from socialsuggest.training.policy import (
    ARCHIVED_TAG,
    CONFIG_TAG,
    LEARNER_CHOSEN_TAG,
    LEARNER_TAG,
    RetrainPolicy,
    config_sha,
    plan_retrain,
)

log = logging.getLogger(__name__)
FAMILY = "tags"
Say = Callable[[str], None]


@dataclass
class TagsCycleReport:
    preprocess: dict[str, Any]
    orgs: list[OrgOutcome]
    engine: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _golden(test: pd.DataFrame, n: int = 20) -> list[dict[str, Any]]:
    """Golden requests from the candidate's test messages (in memory only, never stored)."""
    rows = test.loc[:, ["text", "network", "message_type"]].head(n)
    return [
        {"text": str(r.text) or "?", "network": str(r.network), "message_type": str(r.message_type)}
        for r in rows.itertuples()
    ]


def _input_example(test: pd.DataFrame) -> pd.DataFrame:
    """A schema example for MLflow that holds no customer data.

    MLflow stores the input example as an artifact outside the lake, where the GDPR
    catalog cannot find it and a deletion request cannot erase it; so the text is
    ours, and only the categorical columns come from the data.
    """
    first = test.iloc[0]
    return pd.DataFrame(
        [{"text": "where is my order? it should have arrived yesterday",
          "network": str(first["network"]), "message_type": str(first["message_type"])}]
    )  # fmt: skip


def _candidate(result: OrgResult, gate_passed: bool, reasons: list[str], folder: Path) -> Candidate:
    assert result.model is not None and result.test is not None
    plots = training_plots(result.model, result.test, result.metrics, folder)
    report = pd.DataFrame([asdict(s) for s in result.model.tag_report.values()])
    report_path = folder / "tag_report.csv"
    report.to_csv(report_path, index=False)
    example = _input_example(result.test)
    return Candidate(
        family=FAMILY,
        org=result.org,
        model=result.model,
        python_model=TagSuggesterModel(k=result.model.config.k),
        input_example=example,
        example_output=TagSuggesterModel(result.model, k=result.model.config.k).predict(
            None, example
        ),
        metrics=_logged_metrics(result),
        params={**asdict(result.model.config), **_learner_params(result.model)},
        data_window=result.window,
        gate_passed=gate_passed,
        gate_reasons=reasons,
        artifacts={**plots, "tag_report": report_path},
    )


def _learner_params(model: TagModel) -> dict[str, Any]:
    """Which learner trained the version and whether it was chosen (``params`` are the
    chosen learner's configuration, so a reader sees what serves)."""
    return {
        "learner": model.learner,
        "choose_learner": model.requested.choose_learner,
        "knn_weight": model.knn_weight,
    }


def _logged_metrics(result: OrgResult) -> dict[str, float]:
    counts = {f"rows.{k}": float(v) for k, v in result.counts.items()}
    summary = {k: float(v) for k, v in result.summary.items()}
    assert result.model is not None
    choice = {
        f"learner.{name}.valid.ndcg@3": score
        for name, score in result.model.learner_scores
        if math.isfinite(score)
    }
    votes = {f"knn.w{w:g}.valid.ndcg@3": score for w, score in result.model.knn_scores}
    votes = {name: score for name, score in votes.items() if math.isfinite(score)}
    return {
        **result.flat_metrics(),
        **summary,
        **counts,
        **choice,
        **votes,
        "train_seconds": result.seconds,
    }


def _production_metrics(
    registry: Registry,
    production: VersionInfo,
    test: pd.DataFrame,
    archived: Iterable[str],
    k: int,
) -> dict[str, float]:
    """Production's hybrid metrics on the candidate's own test window (same data), with
    the tags archived for the candidate (``archived``) off in production too.

    The test window's messages still carry a just-archived tag, so production, which
    may still suggest it, would score points the candidate is not allowed to: at 5M
    messages over 1,000 orgs the no-regression gate rejected 27 of 370 archive edits
    on that alone (one org's hit-rate@3 0.99 vs 0.31), leaving the archived tag served.
    Archiving is the org's decision, not a model's to veto: the gate compares models
    under the same archive.

    ``k``: the candidate's suggestions per message; production is ranked as many, so a
    candidate configured to show fewer (or more) is compared like for like.
    """
    model = registry.load_version(production).model.with_archived(archived)
    metrics: dict[str, float] = evaluate_model(model, test, k=k)["hybrid"]
    return metrics


def publish(
    registry: Registry,
    result: OrgResult,
    *,
    gate_config: GateConfig,
    dry_run: bool,
    actor: str,
    must_replace: bool = False,
    gate_server: GateServer | None = None,
) -> OrgOutcome:
    """Gate, register and (unless dry-run or rejected) promote one org's candidate.

    ``must_replace``: production was trained on data a deletion request erased, so
    the candidate is not compared with it (it goes whatever its metrics, as long as
    the candidate passes its own gates). ``gate_server``: the batch's integration-gate
    process (one per batch); without it, the gate starts one for this org alone.
    """
    name = model_name(FAMILY, result.org)
    outcome = OrgOutcome(org=result.org, trained=result.ok, error=result.error,
                         train_seconds=round(result.seconds, 2), refit=result.refit)  # fmt: skip
    if not result.ok or result.model is None or result.test is None:
        return outcome
    incumbent = check_incumbent(
        registry, name, result.fingerprint, outcome,
        dry_run=dry_run, actor=actor, must_replace=must_replace,
    )  # fmt: skip
    if incumbent.reused is not None:
        return incumbent.reused
    before, erased = incumbent.before, incumbent.erased
    production = None
    edited_from = result.production_metrics
    if before is not None and not erased:
        if edited_from and edited_from[0] == before.version:
            production = edited_from[1]  # the model this edit was made from, already scored
        else:
            try:
                production = _production_metrics(
                    registry, before, result.test, result.model.archived, result.model.config.k
                )
            except Exception as exc:  # a production artifact that no longer loads
                # cannot be the bar to clear: the candidate is judged on its own gates
                log.warning("%s v%s does not load (%s): not compared", name, before.version,
                            type(exc).__name__)  # fmt: skip
    gate = model_gate(
        enabled_tags=result.summary["n_enabled"],
        candidate=result.metrics["hybrid"],
        production=production,
        config=gate_config,
    )
    outcome.gate_passed, outcome.gate_reasons = gate.passed, gate.reasons
    outcome.enabled_tags = result.summary["n_enabled"]
    outcome.disabled_tags = result.summary["n_disabled"]
    outcome.metrics = {k: round(v, 4) for k, v in result.metrics["hybrid"].items()}
    with tempfile.TemporaryDirectory() as tmp:
        candidate = _candidate(result, gate.passed, gate.reasons, Path(tmp))
        candidate.extra_tags = {
            **gate.as_tags(),
            "dry_run": str(dry_run).lower(),
            FINGERPRINT_TAG: result.fingerprint,
            CONFIG_TAG: config_sha(result.model.requested),
            ARCHIVED_TAG: result.archived_digest,
        }
        if result.learner_chosen_at:
            candidate.extra_tags[LEARNER_TAG] = result.model.learner
            candidate.extra_tags[LEARNER_CHOSEN_TAG] = result.learner_chosen_at
        if erased:
            candidate.extra_tags["replaces_erased_data_model"] = "true"
        version = registry.log_candidate(candidate)
    outcome.version = version.version
    if gate.passed:
        # the artifact as serving will load it: a serving process asked golden requests,
        # whose answers must stay within the tags the trained model may suggest
        check = integration_gate(
            registry, version, _golden(result.test),
            vocabulary=TagVocabulary.of(result.model), server=gate_server,
            latency_budget_ms=gate_config.latency_budget_ms,
        )  # fmt: skip
        record_integration(registry, name, version.version, check, outcome)
    if outcome.gate_passed and not dry_run:
        registry.set_alias(name, STAGING, version.version, actor=actor, reason="passed model gates")
        registry.promote(name, version.version, actor=actor, reason="daily retrain: gates passed")
        outcome.promoted = True
        outcome.production_after = version.version
    return outcome


def run_tags_cycle(
    settings: Settings,
    registry: Registry,
    *,
    orgs: list[str] | None = None,
    engine: Engine = "local",
    dry_run: bool = False,
    config: TagModelConfig | None = None,
    gate_config: GateConfig | None = None,
    actor: str = "daily-cycle",
    say: Say | None = None,
    retrain: RetrainPolicy | None = None,
) -> TagsCycleReport:
    """Preprocess, then train, gate, register and promote (the CLI's ``run``/``train``)."""
    say = say or (lambda message: log.info("%s", message))
    started = time.perf_counter()
    lake = Lake.from_settings(settings)
    say("preprocess: reading the lake's state (Spark starts only if a partition changed)")
    pre = preprocess_tags(lambda: get_spark(settings), lake, settings=settings)
    say(
        f"preprocess: {pre.partitions_processed} partitions processed, "
        f"{pre.partitions_skipped} unchanged, {pre.rows_written} rows in {pre.seconds:.1f}s"
    )
    outcomes = train_and_publish(
        settings, registry, orgs or processed_orgs(lake), engine=engine, dry_run=dry_run,
        config=config, gate_config=gate_config, actor=actor, say=say, retrain=retrain,
    )  # fmt: skip
    return TagsCycleReport(pre.summary(), outcomes, engine, round(time.perf_counter() - started, 1))


def train_and_publish(
    settings: Settings,
    registry: Registry,
    orgs: list[str],
    *,
    engine: Engine = "local",
    dry_run: bool = False,
    config: TagModelConfig | None = None,
    gate_config: GateConfig | None = None,
    actor: str = "daily-cycle",
    say: Say | None = None,
    spark: SparkSession | None = None,
    retrain: RetrainPolicy | None = None,
) -> list[OrgOutcome]:
    """Train these orgs on processed data, gate, register, promote (a DAG task per batch);
    each org is published as soon as its training ends.

    ``retrain`` decides which of them are refitted (default: all). An org whose only
    change is a newly archived tag gets production's model with the tag switched off,
    published like a retrained one (``refit`` False); the others keep their production
    model and come back as outcomes with ``fresh`` set, or ``waiting`` when they have none
    and the gates rejected their latest candidate on data that has barely changed.
    """
    say = say or (lambda message: log.info("%s", message))
    lake = Lake.from_settings(settings)
    config = config or TagModelConfig()
    queue = RetrainQueue(lake)
    erased = {org: ids for org, ids in queue.pending().items() if org in orgs}
    if erased:
        say(f"privacy: {len(erased)} orgs must replace models trained on erased data")
    as_of = datetime.now(UTC)
    plan = plan_retrain(
        lake, registry, orgs, family=FAMILY, policy=retrain or RetrainPolicy(),
        config=config, as_of=as_of, erased=erased,
    )  # fmt: skip
    if plan.fresh or plan.archive or plan.waiting:
        say(
            f"retrain policy: of {len(orgs)} orgs, {len(plan.fresh)} fresh (kept), "
            f"{len(plan.archive)} only switch archived tags off, {len(plan.waiting)} wait "
            f"(rejected, data unchanged), {len(plan.train)} retrained"
        )
    fresh = [
        OrgOutcome(
            org=org,
            trained=False,
            fresh=reason,
            production_before=plan.production[org].version,
            production_after=plan.production[org].version,
        )
        for org, reason in plan.fresh.items()
    ] + [OrgOutcome(org=org, trained=False, waiting=reason) for org, reason in plan.waiting.items()]
    orgs = plan.train
    say(f"train: {len(orgs)} orgs with engine={engine}")
    if plan.learners:
        say(
            f"learner: {len(plan.learners)} of them fit the learner production chose in the "
            "last days without comparing again"
        )
    published: list[OrgOutcome] = []
    gates = gate_config or GateConfig().budgeted(settings.gate_latency_budget_ms)
    # one integration-gate serving process for the batch: started by the first candidate
    # that passes the model gates, stopped when the batch is done (or fails)
    with GateServer(registry.tracking_uri, family=FAMILY) as gate_server:

        def publish_one(result: OrgResult) -> None:
            outcome = publish(
                registry,
                result,
                gate_config=gates,
                dry_run=dry_run,
                actor=actor,
                must_replace=result.org in erased,
                gate_server=gate_server,
            )
            if result.org in erased and outcome.version is not None and not dry_run:
                # every version from before this cycle saw the erased data: flag them (the
                # request may have run while the registry was down), then clear the queue.
                # Also when the gates rejected the candidate: a production left in place
                # carries the flag, which keeps it stale and unreusable; without one, the
                # org waits like any rejected org instead of refitting every morning.
                registry.mark_trained_on_erased_data(
                    [result.org], erased[result.org], as_of.isoformat()
                )
                queue.clear([result.org])
            if outcome.version is not None:
                name = model_name(FAMILY, outcome.org)
                say(f"registry: {name} v{outcome.version} {verdict(outcome)}")
            published.append(outcome)

        def trained(result: OrgResult) -> None:
            """Publish each org as soon as it is trained, while the pool trains the
            others: the org is promoted when its own fit ends, and a task killed late
            leaves what it published serving. (On 2 cores the overlap saved 11-12% at
            40 orgs and little at 100; the Spark fan-out returns every org at the end.)"""
            state = "ok" if result.ok else f"FAILED ({(result.error or '').splitlines()[0]})"
            say(f"train: {result.org} {state} in {result.seconds:.1f}s")
            publish_one(result)

        if engine == "spark":
            session = spark or get_spark(settings)
            train_orgs_spark(
                session, lake, orgs, config, as_of=as_of, progress=trained, learners=plan.learners
            )
        else:
            train_orgs_local(
                settings, orgs, config, as_of=as_of, progress=trained, learners=plan.learners
            )
        for org in plan.archive:  # each edit made and published before the next is loaded
            publish_one(_archive_in_production(lake, registry, plan.production[org], as_of))
        if gate_server.starts:
            started = ", ".join(f"{s:.1f}s" for s in gate_server.start_seconds)
            say(f"integration gate: {gate_server.starts} serving process(es), started in {started}")
    return fresh + sorted(published, key=lambda o: o.org)


def _archive_in_production(
    lake: Lake, registry: Registry, production: VersionInfo, as_of: datetime
) -> OrgResult:
    """Production's model with the newly archived tags off, as a candidate (no refit)."""
    org = production.tags.get("org") or production.name.split(".", 1)[1]
    try:
        model = registry.load_version(production).model
        examples = load_examples(lake, org)
        lifecycle = load_tag_lifecycle(lake, org)
    except Exception as exc:
        return OrgResult(org=org, ok=False, error=f"{type(exc).__name__}: {exc}", refit=False)
    window = (production.tags.get("data_window.start", ""), production.tags["data_window.end"])
    result = archive_in_model(org, model, examples, lifecycle, as_of=as_of, window=window)
    result.learner_chosen_at = production.tags.get(LEARNER_CHOSEN_TAG, "")  # the same fit
    if result.ok and result.test is not None and result.model is not None:
        # what publishing compares the edit with: production under the same archive
        # (``_production_metrics``), which is the edit itself, already scored; publish
        # would otherwise download and unpickle production a second time
        result.production_metrics = (production.version, dict(result.metrics["hybrid"]))
    return result
