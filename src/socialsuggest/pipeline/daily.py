"""One daily cycle on embedded defaults.

Make sure sample data exists (generated once per seed and size, so re-runs reuse
it), ingest it (idempotent: a second run adds nothing), then run each model
family's cycle (tags, hashtags, replies, trends: preprocess, train, gate, register,
promote)
and summarise. `make run`, the CLI and the Airflow DAG all call this one function.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from socialsuggest.catalog import open_catalog, sync_outbox
from socialsuggest.config import Settings
from socialsuggest.ingest import IngestReport, ingest_paths
from socialsuggest.lake import DatasetStats, Lake
from socialsuggest.pipeline.hashtags_cycle import HashtagsCycleReport, run_hashtags_cycle
from socialsuggest.pipeline.replies_cycle import RepliesCycleReport, run_replies_cycle
from socialsuggest.pipeline.tags_cycle import TagsCycleReport, run_tags_cycle
from socialsuggest.pipeline.trends_cycle import TrendsReport, run_trends_cycle
from socialsuggest.privacy import erased_subjects
from socialsuggest.registry import Registry
from socialsuggest.sampledata import generate
from socialsuggest.training.fanout import Engine

Progress = Callable[[str, int, int | None], None]  # (step, advance, total)
#: The model families a daily cycle runs, in order.
FAMILIES = ("tags", "hashtags", "replies", "trends")


@dataclass
class CycleSummary:
    sample_dir: str
    lake_root: str
    ingest: IngestReport
    raw: list[DatasetStats]
    quarantine: list[DatasetStats]
    extra: dict[str, Any] = field(default_factory=dict)
    tags: TagsCycleReport | None = None
    hashtags: HashtagsCycleReport | None = None
    replies: RepliesCycleReport | None = None
    trends: TrendsReport | None = None

    def rows(self, zone: str, dataset: str) -> int:
        stats = self.raw if zone == "raw" else self.quarantine
        return sum(s.rows for s in stats if s.dataset == dataset)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sample_dir": self.sample_dir,
            "lake_root": self.lake_root,
            "ingest": self.ingest.summary(),
            "lake": {
                "raw": {s.dataset: s.rows for s in self.raw},
                "quarantine": {s.dataset: s.rows for s in self.quarantine},
                "orgs": max((s.orgs for s in self.raw if s.dataset == "messages"), default=0),
            },
            **self.extra,
            "tags": self.tags.as_dict() if self.tags else None,
            "hashtags": self.hashtags.as_dict() if self.hashtags else None,
            "replies": self.replies.as_dict() if self.replies else None,
            "trends": self.trends.as_dict() if self.trends else None,
        }


def ensure_sample_data(
    settings: Settings,
    *,
    orgs: int,
    messages: int,
    days: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate sample data once per (orgs, messages, days, seed); reuse it afterwards."""
    home: Path = settings.home
    out = home / "incoming" / f"sample-o{orgs}-m{messages}-d{days}-s{seed}"
    manifest = out / "manifest.json"
    if manifest.is_file():
        return out
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    generate(
        tmp,
        datasets_dir=settings.resolved_datasets_dir,
        orgs=orgs,
        messages=messages,
        days=days,
        seed=seed,
        progress=progress,
    )
    tmp.rename(out)  # a crashed generation never looks finished
    return out


def run_cycle(
    settings: Settings,
    *,
    orgs: int = 8,
    messages: int = 20_000,
    days: int = 30,
    seed: int = 42,
    registry: Registry | None = None,
    engine: Engine = "local",
    dry_run: bool = False,
    train_orgs: list[str] | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
    families: tuple[str, ...] = FAMILIES,
) -> CycleSummary:
    """Run the cycle; ``progress(step, advance, total)`` reports per-step advance.

    Without a registry the cycle stops after ingest (no model work); with one, the
    ``families`` (tags, hashtags, replies, trends) are each preprocessed, trained, gated,
    registered and promoted, in that order.
    """
    step = progress or (lambda *_: None)
    sample = ensure_sample_data(
        settings,
        orgs=orgs,
        messages=messages,
        days=days,
        seed=seed,
        progress=lambda n: step("generate", n, messages),
    )
    manifest = json.loads((sample / "manifest.json").read_text())
    total_records = sum(manifest["counts"].values())
    lake = Lake.from_settings(settings)
    report = ingest_paths(
        lake,
        [sample],
        flush_rows=settings.ingest_flush_rows,
        progress=lambda n: step("ingest", n, total_records),
        erased=erased_subjects(settings, lake),
    )
    tags = hashtags = replies = trends = None
    if registry is not None and "tags" in families:
        tags = run_tags_cycle(
            settings, registry, orgs=train_orgs, engine=engine, dry_run=dry_run, say=say
        )
    if registry is not None and "hashtags" in families:
        hashtags = run_hashtags_cycle(settings, registry, orgs=train_orgs, dry_run=dry_run, say=say)
    if registry is not None and "replies" in families:
        # after tags: it reads the messages the tag cycle's Spark job cleaned
        replies = run_replies_cycle(settings, registry, orgs=train_orgs, dry_run=dry_run, say=say)
    if registry is not None and "trends" in families:  # over the posts hashtags processed
        trends = run_trends_cycle(settings, registry, dry_run=dry_run, say=say)
    with open_catalog(settings) as catalog:  # index what this cycle wrote (GDPR catalog)
        indexed = sync_outbox(lake, catalog)
        catalogued = catalog.count()
    return CycleSummary(
        tags=tags,
        hashtags=hashtags,
        replies=replies,
        trends=trends,
        sample_dir=str(sample),
        lake_root=lake.root,
        ingest=report,
        raw=lake.stats("raw"),
        quarantine=lake.stats("quarantine"),
        extra={
            "generated_invalid": manifest["invalid_injected"],
            "distinct_tags": distinct_tags(lake),
            "catalog_indexed": indexed.upserted,
            "catalog_objects": catalogued,
        },
    )


def distinct_tags(lake: Lake) -> int:
    """Distinct (org, tag) pairs applied to messages in the raw lake."""
    files = lake.files("raw", "messages")
    if not files:
        return 0
    table = lake.read([f.key for f in files], columns=["org_id", "tags"])
    orgs = pc.take(table["org_id"], pc.list_parent_indices(table["tags"]))
    tags = pc.struct_field(pc.list_flatten(table["tags"]), "tag")
    pairs = pa.table({"org": orgs, "tag": tags}).group_by(["org", "tag"]).aggregate([])
    return int(pairs.num_rows)
