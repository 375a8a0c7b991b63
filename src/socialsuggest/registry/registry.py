"""MLflow as the model registry: runs, versions, aliases, promotion and rollback.

Conventions (see ARCHITECTURE.md): one registered model per (family, org), named
``<family>.<org>``; aliases ``staging``, ``production`` (and ``challenger`` for
experiments) instead of the deprecated stages. Every version is tagged with its
data window, gate results, code version and the production version it would
replace, so a rollback target is always known; every alias move is recorded (who,
when, why, from, to) on the registered model, so moves are auditable from MLflow
alone.

Data-quality results (the Great Expectations suites that gate a retrain) are logged
too, one run per suite and window in the ``data-quality`` experiment
(:meth:`Registry.log_quality`), so a failed gate is readable in the same UI.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import json
import logging
import os
import pickle
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from socialsuggest.events.schemas import ORG_PATTERN
from socialsuggest.registry.server import healthy

if TYPE_CHECKING:  # serving imports registry: a runtime import here would be circular
    from socialsuggest.serving.experiments import Experiment

log = logging.getLogger(__name__)
PRODUCTION = "production"
STAGING = "staging"
CHALLENGER = "challenger"
_HISTORY_TAG = "alias_history"
ERASED_TAG = "privacy.trained_on_erased_data"
ERASURE_REQUESTS_TAG = "privacy.erasure_requests"
_HISTORY_KEEP = 30
QUALITY_EXPERIMENT = "data-quality"
ACCEPTANCE_EXPERIMENT = "acceptance"
#: MLflow accepts at most this many metrics per ``log_batch`` call.
_BATCH_METRICS = 1000
#: what MLflow's SQL stores hold of a model version's description (Postgres refuses more)
DESCRIPTION_MAX = 5000
#: Held while MLflow's process-wide URIs point at one registry (:meth:`Registry._fluent`).
_FLUENT_LOCK = threading.RLock()
#: What :func:`mlflow.set_tracking_uri` and :func:`mlflow.set_registry_uri` export.
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")

# ``mlflow.pyfunc.log_model`` replaces ``os.environ``'s ``get`` and ``[]`` process-wide
# while it checks the input example, collects the names read into a set, and then
# iterates that set: a read of a new variable by any other thread meanwhile (a pool
# worker, a serving app's registry refresh) raised "Set changed size during iteration"
# and lost the candidate (CI, 2026-12-07). The names only feed a Databricks-serving hint;
# our models read no variables when they predict. A user's explicit setting still wins.
os.environ.setdefault("MLFLOW_RECORD_ENV_VARS_IN_MODEL_LOGGING", "false")


def _rejected(reasons: Sequence[str]) -> str:
    """A rejected version's description, cut to what the registry's store holds."""
    described = "REJECTED: " + "; ".join(reasons)
    if len(described) <= DESCRIPTION_MAX:
        return described
    return described[: DESCRIPTION_MAX - 1] + "…"


class RegistryError(RuntimeError):
    """A registry operation that must not happen (e.g. promoting a rejected version)."""


def model_name(family: str, org: str) -> str:
    return f"{family}.{org}"


def code_version() -> str:
    """The git commit the code runs from (``+dirty.<diff hash>`` if modified), else the
    package version."""
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=5,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=5,
        ).stdout.strip()  # fmt: skip
        if not dirty:
            return commit
        # which uncommitted change: two runs of the same edit are the same code
        diff = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD"],
            capture_output=True, check=True, timeout=10,
        ).stdout  # fmt: skip
        return f"{commit}+dirty.{hashlib.sha256(diff).hexdigest()[:8]}"
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"socialsuggest-{version('socialsuggest')}"


@dataclass
class Candidate:
    """A trained model and everything the registry records about it."""

    family: str
    org: str
    model: Any
    #: The pyfunc wrapper *without* the fitted model: the model travels once, as the
    #: pickled ``model`` artifact that the wrapper's ``load_context`` reads.
    python_model: PythonModel
    input_example: pd.DataFrame
    example_output: pd.DataFrame
    metrics: Mapping[str, float]
    params: Mapping[str, Any]
    data_window: tuple[str, str]
    gate_passed: bool
    gate_reasons: list[str]
    artifacts: Mapping[str, Path] = field(default_factory=dict)
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    #: Distributions the model needs at load time, pinned to the installed versions.
    #: Naming them saves MLflow's requirement inference (a subprocess that reloads the
    #: model: ~10 s per org, the largest cost of a daily retrain).
    #: What the artifact needs to load and answer (the tag model's default; PyStemmer
    #: stems its word features at serving time too).
    requirements: tuple[str, ...] = (
        "scikit-learn", "scipy", "numpy", "pandas", "pyarrow", "PyStemmer",
    )  # fmt: skip

    @property
    def name(self) -> str:
        return model_name(self.family, self.org)


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str | None
    created: str

    @property
    def accepted(self) -> bool:
        return self.tags.get("gate.passed") == "true"

    @property
    def trained_on_erased_data(self) -> bool:
        return self.tags.get(ERASED_TAG) == "true"


@dataclass(frozen=True)
class QualityRun:
    """Where a data-quality result was logged."""

    run_id: str
    experiment_id: str
    url: str  # the run's page in the MLflow UI (``runs:/<id>`` for a non-HTTP store)


class SuiteSummary(Protocol):
    """A suite result (e.g. :class:`socialsuggest.quality.expectations.SuiteResult`)."""

    def summary(self) -> dict[str, Any]: ...


class Registry:
    """Thin, typed layer over :class:`MlflowClient` with our conventions."""

    def __init__(self, tracking_uri: str) -> None:
        # Per-file download bars and run links flood job logs; operators use the UI.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        for noisy in ("mlflow.tracking", "mlflow.store", "mlflow.models"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # its cloudpickle notice concerns the wrapper class, which holds no data
        logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
        self.tracking_uri = tracking_uri
        #: Models are registered where runs are tracked (one server holds both).
        self.registry_uri = tracking_uri
        # An explicit client, not MLflow's process-wide URI: two registries in one
        # process (tests, a gate server next to a pipeline) must not redirect each other.
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)

    @contextmanager
    def _fluent(self) -> Iterator[None]:
        """MLflow's process-wide tracking and registry URIs pointed at this registry for
        the block, then restored (values and environment variables) as they were.

        Only for the calls MLflow offers as fluent APIs alone (``start_run``,
        ``log_model``, ``register_model``): everything else goes through ``self.client``.
        A lock serialises such blocks, so threads using other registries cannot swap
        the URI under each other; threads calling fluent MLflow outside a registry see
        this registry's URI while a block runs.
        """
        with _FLUENT_LOCK, _global_uris(self.tracking_uri, self.registry_uri):
            yield

    # ---- logging and registration -------------------------------------------------
    def log_candidate(self, candidate: Candidate) -> VersionInfo:
        """One MLflow run per (family, org) training: params, metrics, plots, model.

        The run and its data go through ``self.client`` with an explicit run id; only
        logging and registering the model need MLflow's fluent API (:meth:`_fluent`).
        """
        experiment_id = self._experiment_id(candidate.family)
        current = self.version_by_alias(candidate.name, PRODUCTION)
        tags = {
            "family": candidate.family,
            "org": candidate.org,
            "data_window.start": candidate.data_window[0],
            "data_window.end": candidate.data_window[1],
            "gate.passed": str(candidate.gate_passed).lower(),
            "gate.reasons": json.dumps(candidate.gate_reasons)[:4900],
            "code_version": code_version(),
            "replaces_production_version": str(current.version) if current else "none",
            **{mlflow_key(k): v for k, v in candidate.extra_tags.items()},
        }
        # resolve_tags adds what a fluent run records by itself (user, source, git commit)
        run_tags = {k: str(v) for k, v in resolve_tags(tags).items()}
        with _quiet():
            run = self.client.create_run(experiment_id, run_name=candidate.name, tags=run_tags)
        run_id = run.info.run_id
        try:
            self.client.log_batch(  # the client splits it into batches MLflow accepts
                run_id,
                params=[Param(mlflow_key(k), _param(v)) for k, v in candidate.params.items()],
            )
            for path in candidate.artifacts.values():
                self.client.log_artifact(run_id, str(path))
            info = self._log_model(run_id, candidate)
            # Metrics after the model, each carrying its id: MLflow 3 links a run's metrics
            # to a model logged after them by fetching every metric's history (one request
            # per metric, ~46 per org: 1.1 s of the 2.1 s a model took to log, profiled on
            # a 30-org publish).
            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id,
                metrics=[
                    Metric(mlflow_key(k), float(v), now, 0, model_id=info.model_id)
                    for k, v in candidate.metrics.items()
                ],
            )
        except BaseException:
            with contextlib.suppress(Exception), _quiet():
                self.client.set_terminated(run_id, "FAILED")
            raise
        with _quiet():
            self.client.set_terminated(run_id, "FINISHED")
        with self._fluent(), _quiet():
            version = mlflow.register_model(info.model_uri, candidate.name, tags=tags)
        self.client.update_model_version(
            candidate.name,
            version.version,
            description=(
                "accepted by the gates" if candidate.gate_passed
                else _rejected(candidate.gate_reasons)
            ),
        )  # fmt: skip
        return self.version(candidate.name, int(version.version))

    def _log_model(self, run_id: str, candidate: Candidate) -> ModelInfo:
        """The pyfunc model, logged into run ``run_id`` (resumed: a logged model belongs to
        the active run's experiment). MLflow offers this as a fluent call only."""
        with tempfile.TemporaryDirectory() as tmp:
            pickled = Path(tmp) / "model.pkl"
            pickled.write_bytes(pickle.dumps(candidate.model))
            signature = mlflow.models.infer_signature(
                candidate.input_example, candidate.example_output
            )
            with self._fluent(), _quiet(), mlflow.start_run(run_id=run_id):
                info: ModelInfo = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=candidate.python_model,
                    artifacts={"model": str(pickled)},
                    signature=signature,
                    input_example=candidate.input_example,
                    pip_requirements=pinned(candidate.requirements),
                )
        return info

    # ---- data quality ---------------------------------------------------------------
    def log_quality(
        self,
        result: SuiteSummary | Mapping[str, Any],
        *,
        experiment: str = QUALITY_EXPERIMENT,
        tags: Mapping[str, str] | None = None,
    ) -> QualityRun:
        """One run per suite result: window as params, counts as metrics, the verdict and
        the lake path as tags, the result document (``result.json``) and a table of the
        failed expectations (``failed_expectations.html``, also the run's description).

        Only :class:`MlflowClient` calls with explicit run ids: no active run is started,
        so nothing leaks into fluent ``mlflow.*`` calls elsewhere in the process. A
        tracking server that does not answer ``/health`` raises :class:`RegistryError`
        at once instead of after the client's retries (minutes).
        """
        doc = dict(result) if isinstance(result, Mapping) else result.summary()
        uri = self.tracking_uri.rstrip("/")
        if uri.startswith(("http://", "https://")) and not healthy(uri):
            raise RegistryError(f"the MLflow tracking server at {uri} does not answer")
        suite = str(doc.get("suite") or "unknown")
        window = doc.get("window") or {}
        dt_from, dt_to = str(window.get("dt_from", "")), str(window.get("dt_to", ""))
        success = bool(doc.get("success"))
        failed = list(doc.get("failed") or [])
        table = _failed_rows(failed)
        run_tags = {
            "suite": suite,
            "success": str(success).lower(),
            "lake.result_path": str(doc.get("result_path") or ""),
            "code_version": code_version(),
            "mlflow.note.content": _markdown(suite, success, doc, table)[:7000],
            **{mlflow_key(k): str(v)[:4900] for k, v in (tags or {}).items()},
        }
        experiment_id = self._experiment_id(experiment)
        run = self.client.create_run(
            experiment_id, run_name=f"{suite} {dt_from}..{dt_to}", tags=run_tags
        )
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            metrics = {
                "rows": doc.get("rows", 0),
                "evaluated": doc.get("evaluated", 0),
                "failed": len(failed),
                "success": 1 if success else 0,
                "orgs": doc.get("orgs", 0),
            }
            params = {"suite": suite, "window.dt_from": dt_from, "window.dt_to": dt_to}
            if doc.get("orgs") is not None:
                params["orgs"] = str(doc["orgs"])
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, float(v or 0), now, 0) for k, v in metrics.items()],
                params=[Param(k, _param(v)) for k, v in params.items()],
            )
            self.client.log_dict(run_id, json.loads(json.dumps(doc, default=str)), "result.json")
            self.client.log_text(
                run_id, _html(suite, success, doc, table), "failed_expectations.html"
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        url = (
            f"{uri}/#/experiments/{experiment_id}/runs/{run_id}"
            if uri.startswith(("http://", "https://"))
            else f"runs:/{run_id}"
        )
        return QualityRun(run_id=run_id, experiment_id=experiment_id, url=url)

    # ---- serving acceptance -----------------------------------------------------------
    def log_acceptance(
        self,
        day: str,
        metrics: Mapping[str, float],
        report: Mapping[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        experiment: str = ACCEPTANCE_EXPERIMENT,
    ) -> QualityRun:
        """One run per reported day: the metrics (per org, version and source), the
        report as ``acceptance.json`` and the verdict as tags.

        Explicit run ids and a fail-fast health check, as :meth:`log_quality` (same
        reasons). Metrics go in batches of MLflow's per-call limit: an org count in the
        hundreds gives thousands of metrics.
        """
        uri = self.tracking_uri.rstrip("/")
        if uri.startswith(("http://", "https://")) and not healthy(uri):
            raise RegistryError(f"the MLflow tracking server at {uri} does not answer")
        experiment_id = self._experiment_id(experiment)
        run_tags = {
            "day": day,
            "code_version": code_version(),
            **{mlflow_key(k): str(v)[:4900] for k, v in (tags or {}).items()},
        }
        run = self.client.create_run(experiment_id, run_name=f"acceptance {day}", tags=run_tags)
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            entries = [Metric(mlflow_key(k), float(v), now, 0) for k, v in metrics.items()]
            for start in range(0, len(entries), _BATCH_METRICS):
                self.client.log_batch(run_id, metrics=entries[start : start + _BATCH_METRICS])
            run_params = {"day": day, **(params or {})}
            self.client.log_batch(
                run_id, params=[Param(k, _param(v)) for k, v in run_params.items()]
            )
            self.client.log_dict(
                run_id, json.loads(json.dumps(report, default=str)), "acceptance.json"
            )
        except BaseException:
            with contextlib.suppress(Exception), _quiet():
                self.client.set_terminated(run_id, "FAILED")
            raise
        with _quiet():  # MLflow prints run links to stdout: `--json` output must stay JSON
            self.client.set_terminated(run_id, "FINISHED")
        url = (
            f"{uri}/#/experiments/{experiment_id}/runs/{run_id}"
            if uri.startswith(("http://", "https://"))
            else f"runs:/{run_id}"
        )
        return QualityRun(run_id=run_id, experiment_id=experiment_id, url=url)

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(self.client.create_experiment(name))
            except MlflowException as error:  # a concurrent task created it first
                if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                    raise
                found = self.client.get_experiment_by_name(name)
                assert found is not None
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)

    # ---- queries --------------------------------------------------------------------
    def version(self, name: str, version: int) -> VersionInfo:
        mv = self.client.get_model_version(name, str(version))
        return _info(mv)

    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return _info(mv)

    def versions(self, name: str) -> list[VersionInfo]:
        found = self.client.search_model_versions(f"name = '{name}'")
        return sorted((_info(mv) for mv in found), key=lambda v: v.version)

    def registered(self, family: str | None = None, *, page_size: int = 1000) -> list[Any]:
        """Every registered model of ``family``, all pages (MLflow pages by 100: one page
        silently capped serving and GDPR flagging at 100 orgs), aliases and tags included."""
        filter_string = f"name LIKE '{family}.%'" if family else None
        return _all_pages(self.client.search_registered_models, filter_string, page_size)

    def models(self, family: str | None = None) -> list[str]:
        return sorted(m.name for m in self.registered(family))

    def aliases(self, family: str | None = None) -> dict[str, dict[str, int]]:
        """``{model name: {alias: version}}`` for every model of ``family``: one paged
        search, so serving can poll thousands of orgs without a call per org."""
        return {
            m.name: {alias: int(version) for alias, version in (m.aliases or {}).items()}
            for m in self.registered(family)
        }

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        tags = self.client.get_registered_model(name).tags
        events: list[dict[str, Any]] = json.loads(tags.get(_HISTORY_TAG, "[]"))
        return events

    # ---- alias moves ----------------------------------------------------------------
    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str
    ) -> VersionInfo:
        target = self.version(name, version)
        if alias in (STAGING, PRODUCTION) and not target.accepted:
            raise RegistryError(
                f"version {version} of {name} was rejected by the gates "
                f"({target.tags.get('gate.reasons', '?')}); it cannot become {alias}"
            )
        previous = self.version_by_alias(name, alias)
        self.client.set_registered_model_alias(name, alias, str(version))
        now = datetime.now(UTC).isoformat(timespec="seconds")
        event = {
            "alias": alias,
            "from": previous.version if previous else None,
            "to": version,
            "actor": actor,
            "reason": reason,
            "at": now,
        }
        history = [*self.alias_history(name), event][-_HISTORY_KEEP:]
        self.client.set_registered_model_tag(name, _HISTORY_TAG, json.dumps(history))
        self.client.set_model_version_tag(name, str(version), f"{alias}.since", now)
        if alias == PRODUCTION and previous and previous.version != version:
            self.client.set_model_version_tag(
                name, str(version), "replaced_production_version", str(previous.version)
            )
        return self.version(name, version)

    def promote(
        self, name: str, version: int | None = None, *, actor: str, reason: str
    ) -> VersionInfo:
        """Move ``production`` to ``version`` (default: the current ``staging``)."""
        if version is None:
            staged = self.version_by_alias(name, STAGING)
            if staged is None:
                raise RegistryError(f"{name} has no '{STAGING}' version to promote")
            version = staged.version
        return self.set_alias(name, PRODUCTION, version, actor=actor, reason=reason)

    def rollback(
        self, name: str, to_version: int | None = None, *, actor: str, reason: str
    ) -> VersionInfo:
        """Move ``production`` back: to ``to_version`` or to the version it replaced."""
        current = self.version_by_alias(name, PRODUCTION)
        if current is None:
            raise RegistryError(f"{name} has no '{PRODUCTION}' version to roll back from")
        if to_version is None:
            to_version = self._previous_accepted(name, current)
        if to_version == current.version:
            raise RegistryError(f"{name}: version {to_version} is already {PRODUCTION}")
        return self.set_alias(
            name, PRODUCTION, to_version, actor=actor, reason=f"rollback: {reason}"
        )

    def _previous_accepted(self, name: str, current: VersionInfo) -> int:
        replaced = current.tags.get("replaced_production_version")
        if replaced and replaced.isdigit():
            previous = self.version(name, int(replaced))
            if previous.accepted and not previous.trained_on_erased_data:
                return int(replaced)
        older = [
            v.version
            for v in self.versions(name)
            if v.accepted and not v.trained_on_erased_data and v.version < current.version
        ]
        if not older:
            raise RegistryError(f"{name}: no earlier accepted version to roll back to")
        return max(older)

    def tag_version(self, name: str, version: int, tags: dict[str, str]) -> VersionInfo:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, value)
        return self.version(name, version)

    def mark_rejected(self, name: str, version: int, reasons: Sequence[str]) -> None:
        """A version a gate after registration (the integration gate) turned down: its tag
        and its description say so, as a version rejected before registration says it.

        The description is what the MLflow UI shows beside the version; left at "accepted
        by the gates" it would tell an operator the opposite of what happened. MLflow's
        SQL stores hold 5,000 characters of it: twenty failed golden requests can say
        more, so it is cut (:func:`_rejected`), and the version's tags keep the reasons.
        """
        self.client.set_model_version_tag(name, str(version), "gate.passed", "false")
        self.client.update_model_version(name, str(version), description=_rejected(reasons))

    # ---- experiments ------------------------------------------------------------------
    def start_experiment(
        self,
        name: str,
        version: int,
        *,
        mode: str,
        fraction: float = 0.0,
        actor: str,
        reason: str,
    ) -> Experiment:
        """Serve ``version`` as the ``challenger`` of ``name`` (shadow or A/B).

        The challenger must have passed the gates like any production candidate
        (A/B shows its suggestions to real users); the alias move is in the history.
        """
        from socialsuggest.serving.experiments import EXPERIMENT_TAG, Experiment

        current = self.version_by_alias(name, PRODUCTION)
        if current is not None and current.version == version:
            raise RegistryError(f"{name}: version {version} is production; it cannot challenge")
        target = self.version(name, version)
        if not target.accepted:
            raise RegistryError(
                f"version {version} of {name} was rejected by the gates "
                f"({target.tags.get('gate.reasons', '?')}); it cannot be a challenger"
            )
        experiment = Experiment(
            mode=mode,  # type: ignore[arg-type]  # validated by Experiment
            challenger_version=version,
            fraction=fraction if mode == "ab" else 0.0,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            actor=actor,
            reason=reason,
        )
        self.set_alias(name, CHALLENGER, version, actor=actor, reason=f"experiment: {reason}")
        self.client.set_registered_model_tag(name, EXPERIMENT_TAG, experiment.to_tag())
        return experiment

    def stop_experiment(self, name: str, *, actor: str, reason: str) -> Experiment | None:
        """End the experiment: the challenger alias goes, the history keeps the record."""
        from socialsuggest.serving.experiments import EXPERIMENT_TAG

        experiment = self.experiment(name)
        challenger = self.version_by_alias(name, CHALLENGER)
        if challenger is not None:
            self.client.delete_registered_model_alias(name, CHALLENGER)
        with contextlib.suppress(MlflowException):
            self.client.delete_registered_model_tag(name, EXPERIMENT_TAG)
        if experiment is not None or challenger is not None:
            event = {
                "alias": CHALLENGER,
                "from": challenger.version if challenger else None,
                "to": None,
                "actor": actor,
                "reason": f"experiment stopped: {reason}",
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            history = [*self.alias_history(name), event][-_HISTORY_KEEP:]
            self.client.set_registered_model_tag(name, _HISTORY_TAG, json.dumps(history))
        return experiment

    def experiment(self, name: str) -> Experiment | None:
        """The running experiment of ``name`` (None when there is none)."""
        from socialsuggest.serving.experiments import EXPERIMENT_TAG, Experiment

        value = self.client.get_registered_model(name).tags.get(EXPERIMENT_TAG)
        return Experiment.from_tag(value) if value else None

    # ---- privacy --------------------------------------------------------------------
    def mark_trained_on_erased_data(
        self, orgs: list[str], request_ids: str | Sequence[str], before: str
    ) -> list[str]:
        """Tag every version (any family) of these orgs registered before ``before``.

        They were trained on data a deletion request has since erased: the daily cycle
        replaces such a production model without the regression comparison, and an
        automatic rollback never picks one (see :meth:`_previous_accepted`).
        ``request_ids`` may hold several requests of one org (the daily cycle clears a
        queue entry with all of them at once). Returns every version that carries the
        flag for them, including those an earlier call already flagged, which are not
        written again.

        One version search per org (``name LIKE '%.<org>'``), not a listing of every
        registered model: with 1,000 orgs and four families, the listing paged through
        4,000 models for each org and each request.
        """
        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        cutoff_ms = datetime.fromisoformat(before).timestamp() * 1000
        flagged: list[str] = []
        for org in sorted(set(orgs)):
            for mv in self._versions_of_org(org):
                if mv.creation_timestamp > cutoff_ms:
                    continue
                tags = dict(mv.tags or {})
                requests = [r for r in tags.get(ERASURE_REQUESTS_TAG, "").split(",") if r]
                missing = [r for r in ids if r not in requests]
                if missing or tags.get(ERASED_TAG) != "true":
                    self.client.set_model_version_tag(mv.name, str(mv.version), ERASED_TAG, "true")
                    self.client.set_model_version_tag(
                        mv.name,
                        str(mv.version),
                        ERASURE_REQUESTS_TAG,
                        ",".join([*requests, *missing][-20:]),
                    )
                flagged.append(f"{mv.name}/{mv.version}")
        return sorted(flagged, key=lambda v: (v.rsplit("/", 1)[0], int(v.rsplit("/", 1)[1])))

    def _versions_of_org(self, org: str, *, page_size: int = 1000) -> list[ModelVersion]:
        """Every version of every family's model of ``org``, all pages.

        LIKE treats ``_`` as a wildcard (org ids may hold it), so the names are checked
        exactly afterwards.
        """
        if not ORG_PATTERN.fullmatch(org):
            raise ValueError(f"org: {org!r} is not an org id ({ORG_PATTERN.pattern})")
        found = _all_pages(self.client.search_model_versions, f"name LIKE '%.{org}'", page_size)
        return [mv for mv in found if mv.name.split(".", 1)[-1] == org]

    # ---- loading --------------------------------------------------------------------
    def load_version(self, info: VersionInfo) -> Any:
        """The unwrapped python model of one version, loaded by number: an alias may move
        between a lookup and the load, a version number cannot.

        The artifacts are downloaded from this registry's server explicitly (no fluent
        URI, so serving's loader threads take no lock) into a directory removed after
        the load: every wrapper reads its pickle in ``load_context``.
        """
        source = self.client.get_model_version_download_uri(info.name, str(info.version))
        # a ``models:/<id>`` source is resolved by MLflow against the process-wide URI
        resolving = self._fluent() if source.startswith("models:") else contextlib.nullcontext()
        with tempfile.TemporaryDirectory(prefix="socialsuggest-model-") as tmp, resolving:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source,
                dst_path=tmp,
                tracking_uri=self.tracking_uri,
                registry_uri=self.registry_uri,
            )
            return mlflow.pyfunc.load_model(local).unwrap_python_model()


def log_quality_or_warn(
    tracking_uri: str,
    result: SuiteSummary | Mapping[str, Any],
    *,
    tags: Mapping[str, str] | None = None,
) -> QualityRun | None:
    """:meth:`Registry.log_quality`, but an MLflow failure only warns (returns None).

    For the gates: whether the data passes is Great Expectations' decision, and a
    registry outage must neither hide nor change it.
    """
    try:
        return Registry(tracking_uri).log_quality(result, tags=tags)
    except Exception as error:  # any MLflow failure: warn, keep the verdict
        log.warning(
            "data-quality result not logged to MLflow at %s (%s: %s); the suite's verdict "
            "stands",
            tracking_uri, type(error).__name__, error,
        )  # fmt: skip
        return None


_TABLE_MAIN = ("expectation", "column", "unexpected_count", "observed_value")


def _failed_rows(failed: list[dict[str, Any]]) -> list[list[str]]:
    """expectation, column, unexpected, observed, details: one row per failure."""
    rows = []
    for f in failed:
        details = ", ".join(
            f"{k}={_cell(v)}" for k, v in f.items() if k not in _TABLE_MAIN and v not in (None, [])
        )
        rows.append([_cell(f.get(k)) for k in _TABLE_MAIN] + [details])
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return " ".join(text.split())[:300]


def _verdict(suite: str, success: bool, doc: Mapping[str, Any], rows: list[list[str]]) -> str:
    window = doc.get("window") or {}
    state = "passed" if success else f"FAILED: {len(rows)} of {doc.get('evaluated')} expectations"
    return (
        f"{suite} {state} ({doc.get('rows')} rows, {window.get('dt_from')}..{window.get('dt_to')}"
        f"); lake result: {doc.get('result_path') or '-'}"
    )


_HEADER = ["expectation", "column", "unexpected", "observed", "details"]


def _markdown(suite: str, success: bool, doc: Mapping[str, Any], rows: list[list[str]]) -> str:
    lines = [_verdict(suite, success, doc, rows)]
    if rows:
        cells = [_HEADER, ["---"] * len(_HEADER), *rows]
        lines += ["", *("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells)]
    return "\n".join(lines) + "\n"


def _html(suite: str, success: bool, doc: Mapping[str, Any], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    table = f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>No failed expectations.</p>"
    return (
        "<!doctype html><meta charset=utf-8><title>"
        f"{html.escape(suite)}</title><style>table{{border-collapse:collapse;font:13px sans-serif}}"
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}</style>"
        f"<p>{html.escape(_verdict(suite, success, doc, rows))}</p>{table}\n"
    )


def _all_pages(search: Any, filter_string: str | None, page_size: int) -> list[Any]:
    """Every result of an MLflow registry search (models or versions), following the
    page token: one page alone silently capped serving and GDPR flagging at 100 orgs."""
    found: list[Any] = []
    token = None
    while True:
        page = search(filter_string=filter_string, max_results=page_size, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _info(mv: ModelVersion) -> VersionInfo:
    return VersionInfo(
        name=mv.name,
        version=int(mv.version),
        aliases=tuple(getattr(mv, "aliases", ()) or ()),
        tags=dict(mv.tags or {}),
        run_id=mv.run_id,
        created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(
            timespec="seconds"
        ),
    )


def pinned(distributions: tuple[str, ...]) -> list[str]:
    """``name==installed version`` for each distribution (the serving env must match)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in distributions]


@contextmanager
def _global_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """Point MLflow's process-wide URIs at one server for the block, then put back exactly
    what was there: the values *set* (None when MLflow resolves them from the environment
    or its default, so a later change of the variable still counts) and the variables
    the setters export for subprocesses. Callers hold :data:`_FLUENT_LOCK`.
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    tracking_before: str | None = getattr(tracking_utils, "_tracking_uri", None)
    registry_before: str | None = getattr(registry_utils, "_registry_uri", None)
    variables_before = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        # None is MLflow's own "unset" (the setters accept it; their hints do not say so)
        mlflow.set_tracking_uri(tracking_before)  # type: ignore[arg-type]
        mlflow.set_registry_uri(registry_before)  # type: ignore[arg-type]
        for name, value in variables_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow writes run links and registration notes straight to stdout/stderr; a
    daily job's log should say what *we* decided, so those go to the debug log."""
    sink = io.StringIO()
    try:
        with redirect_stdout(sink), redirect_stderr(sink):
            yield
    finally:
        if sink.getvalue():
            log.debug("mlflow said: %s", sink.getvalue().strip())


def mlflow_key(name: str) -> str:
    """MLflow keys allow no '@': ``hybrid.ndcg@3`` is logged as ``hybrid.ndcg_at_3``."""
    return name.replace("@", "_at_")


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:500]


def default_actor() -> str:
    """Who moved an alias: an explicit operator name, else the OS user (no personal data)."""
    return os.environ.get("SOCIALSUGGEST_ACTOR") or os.environ.get("USER") or "unknown"
