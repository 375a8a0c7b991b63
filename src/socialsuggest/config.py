"""One Settings object for the whole platform.

Every entry point (CLI, DAG tasks, tests, the serving app) builds its configuration
the same way, so that local, staging and production differ only in environment
variables, never in code paths. Values come from, in order of precedence: explicit
keyword arguments, ``SOCIALSUGGEST_*`` environment variables, an optional dotenv
file (``SOCIALSUGGEST_CONFIG_FILE``, default ``./socialsuggest.env`` when present),
then the embedded defaults below, which keep all state under ``./var``.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The repository checkout this package was installed from (editable install), used
#: only to find ``../shared/datasets`` next to it when no datasets dir is configured.
REPO_ROOT = Path(__file__).resolve().parents[2]


class Profile(StrEnum):
    """Which backing services the same code paths talk to."""

    EMBEDDED = "embedded"
    SERVICES = "services"


def _config_file() -> str | None:
    explicit = os.environ.get("SOCIALSUGGEST_CONFIG_FILE")
    if explicit:
        if not Path(explicit).is_file():
            raise FileNotFoundError(
                f"SOCIALSUGGEST_CONFIG_FILE points to {explicit!r}, which is not a file"
            )
        return explicit
    return "socialsuggest.env" if Path("socialsuggest.env").is_file() else None


class Settings(BaseSettings):
    """Platform settings; derived paths default to locations under ``home``."""

    model_config = SettingsConfigDict(
        env_prefix="SOCIALSUGGEST_",
        extra="ignore",
        validate_default=True,
    )

    profile: Profile = Profile.EMBEDDED
    home: Path = Field(default=Path("./var"), description="root of all embedded state")
    lake_root: str = Field(default="", description="lake root: a path or s3://bucket/prefix")
    catalog_url: str = Field(
        default="", description="empty = embedded SQLite catalog, or http://host:9200"
    )
    catalog_index: str = Field(
        default="lake-objects", description="Elasticsearch index (alias) of the catalog"
    )
    privacy_key: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC key for subject ids in audit records; empty = a key file under "
        "home (embedded profile only)",
    )
    mlflow_tracking_uri: str = Field(
        default="",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "SOCIALSUGGEST_MLFLOW_TRACKING_URI"),
        description="MLflow's own variable; empty = the server `make run` starts",
    )
    mlflow_port: int = Field(default=5000, description="port of the MLflow server make run starts")
    api_host: str = Field(default="127.0.0.1", description="interface the suggestion API binds")
    api_port: int = Field(default=8000, description="port of the suggestion API")
    admin_key: SecretStr = Field(
        default=SecretStr(""),
        description="operator key that reaches every org's API routes; from the environment "
        "only (SOCIALSUGGEST_ADMIN_KEY), never stored; empty = no admin key",
    )
    api_max_body_bytes: int = Field(
        default=128 * 1024,
        ge=1024,
        description="request bodies over this many bytes get 413 before parsing (the largest "
        "valid request, 10,000 characters JSON-escaped, is ~120 KB)",
    )
    api_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="how often the API asks the registry whether `production` moved (a "
        "promotion or rollback is served within about this long plus the model's load time)",
    )
    airflow_port: int = Field(
        default=8080, description="port of the Airflow UI/API make run starts"
    )
    airflow_parallelism: int = Field(
        default=2, ge=1, description="task slots of the Airflow make run starts (2 cores here)"
    )
    spark_master: str = "local[*]"
    datasets_dir: Path | None = Field(
        default=None, description="real corpora for the sample generator and benchmarks"
    )
    gate_latency_budget_ms: float = Field(
        default=250.0,
        gt=0,
        description="integration gate: p95 wall-clock time allowed for the registered "
        "artifact to answer a golden request; a shared CI runner may need more",
    )
    retention_days: int = Field(default=180, ge=1, description="raw data retention window")
    acceptance_floor: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="daily acceptance report: an org below this rate (accepted / shown) fails it",
    )
    acceptance_min_shown: int = Field(
        default=50,
        ge=1,
        description="daily acceptance report: orgs with fewer suggestions shown that day are "
        "reported but not held to the floor (too few to judge)",
    )
    retrain_min_new_fraction: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="scheduled retrain (mode 'changed'): retrain an org once its new examples "
        "are this share of all its examples",
    )
    retrain_max_age_days: float = Field(
        default=7.0, gt=0, description="scheduled retrain: retrain a production model this old"
    )
    retrain_learner_recheck_days: float = Field(
        default=7.0,
        ge=0,
        description="tags retrain: keep the learner an org's production model chose up to "
        "this many days ago instead of comparing the candidates again (0: every fit)",
    )
    ingest_flush_rows: int = Field(
        default=50_000, ge=1, description="rows buffered across partitions before a flush"
    )
    s3_endpoint_url: str = Field(default="", description="S3-compatible endpoint, e.g. SeaweedFS")
    mlflow_backend_uri: str = Field(
        default="",
        description="backend store of the MLflow server make run starts; empty = SQLite under home",
    )
    mlflow_artifacts: str = Field(
        default="", description="artifact destination of that server; empty = a folder under home"
    )

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        services = self.profile == Profile.SERVICES
        if not self.lake_root:
            self.lake_root = "s3://socialsuggest/lake" if services else str(self.home / "lake")
        elif "://" not in self.lake_root:
            self.lake_root = str(Path(self.lake_root).expanduser().resolve())
        if services:  # the servers `make services-up` starts, on their default ports
            self.s3_endpoint_url = self.s3_endpoint_url or "http://127.0.0.1:8333"
            self.catalog_url = self.catalog_url or "http://127.0.0.1:9200"
            self.mlflow_artifacts = self.mlflow_artifacts or "s3://socialsuggest/mlflow-artifacts"
            if not self.mlflow_backend_uri:
                # the password is a secret: from the environment, never a default in a file
                password = os.environ.get("SOCIALSUGGEST_PG_PASSWORD", "socialsuggest-local")
                self.mlflow_backend_uri = (
                    f"postgresql://socialsuggest:{password}@127.0.0.1:5432/mlflow"
                )
        return self

    @property
    def resolved_tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI if set, else the server ``make run`` starts locally."""
        return self.mlflow_tracking_uri or f"http://127.0.0.1:{self.mlflow_port}"

    @cached_property
    def resolved_datasets_dir(self) -> Path:
        """The shared real-data folder, or a clear error naming where it was looked for."""
        candidates = (
            [self.datasets_dir]
            if self.datasets_dir
            else [
                REPO_ROOT.parent / "shared" / "datasets",
                Path.cwd().parent / "shared" / "datasets",
                Path("/work/shared/datasets"),
            ]
        )
        for candidate in candidates:
            if candidate is not None and (candidate / "README.md").is_file():
                return candidate.resolve()
        looked = ", ".join(str(c) for c in candidates)
        raise FileNotFoundError(
            f"datasets_dir: no shared datasets folder found (looked in {looked}); "
            "set SOCIALSUGGEST_DATASETS_DIR to the folder holding tags/ and raw/"
        )

    def describe(self) -> dict[str, Any]:
        """Settings as shown to operators: passwords and keys masked."""
        shown = self.model_dump(mode="json")
        shown["privacy_key"] = "***" if self.privacy_key.get_secret_value() else "(key file)"
        shown["admin_key"] = "***" if self.admin_key.get_secret_value() else "(none)"
        shown["mlflow_backend_uri"] = _mask_password(self.mlflow_backend_uri) or (
            f"(SQLite: {self.home / 'mlflow' / 'mlflow.db'})"
        )
        shown["mlflow_tracking_uri"] = self.mlflow_tracking_uri or "(server started by make run)"
        shown["catalog_url"] = self.catalog_url or f"(embedded: {self.home / 'catalog.sqlite'})"
        return shown


def _mask_password(uri: str) -> str:
    """``scheme://user:secret@host`` → ``scheme://user:***@host`` for display."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", uri)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from env + optional file; keyword overrides win (used by tests)."""
    return Settings(_env_file=_config_file(), **overrides)  # type: ignore[call-arg]
