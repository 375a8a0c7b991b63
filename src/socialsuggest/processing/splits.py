"""Training-time readers of processed data, and the time-based split.

Training runs per org without Spark: one org's processed partitions are small
enough for pyarrow + pandas, and a training task should not pay a JVM start-up.

Splits are by time, never random: the model is used on messages that arrive after
it was trained, so validation and test must be the newest data. A random split
would leak near-duplicate messages of the same day across sets and flatter the
offline metrics.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime

import pandas as pd
import pyarrow as pa

from socialsuggest.lake import Lake
from socialsuggest.processing.lifecycle import read_tag_events
from socialsuggest.processing.tags import FAMILY, PROCESSED_SCHEMA

MIN_ROWS = 10
#: Share of an org's examples (the slice before the test slice) the per-tag gates and
#: thresholds are tuned on. 0.2 rather than 0.1: a tag's AUC interval narrows with its
#: validation positives, so fewer good tags are switched off for want of evidence, and
#: the enabled tags are refit on train + valid anyway (benchmark: +0.018 NDCG@3 on cooking,
#: +0.006 on se_crypto; benchmarks/reports/tags_accuracy.md).
VALID_FRAC = 0.2
_ORDER = ["created_at", "message_id"]


def load_examples(
    lake: Lake, org: str, dt_from: date | None = None, dt_to: date | None = None
) -> pd.DataFrame:
    """One org's processed examples, oldest first, ``tags`` as Python lists."""
    files = lake.files("processed", FAMILY, dt_from=dt_from, dt_to=dt_to, orgs=[org])
    if not files:
        return PROCESSED_SCHEMA.empty_table().to_pandas()
    table = lake.read(sorted(f.key for f in files)).cast(PROCESSED_SCHEMA)
    frame = table.drop_columns(["tags"]).to_pandas()
    frame["tags"] = pd.Series(table.column("tags").to_pylist(), index=frame.index, dtype=object)
    # A crash between writing a partition's new file and deleting its old one leaves
    # both for a moment; the newest write of a message wins.
    frame = frame.drop_duplicates("message_id", keep="last")
    return frame.sort_values(_ORDER, kind="stable").reset_index(drop=True)


def newest(df: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """The ``n`` newest rows, oldest first; all of them when ``n`` is None or not smaller.

    Why a cap at all: an org's fit costs about its examples times its tags, so without
    one the largest org bounds the whole daily cycle (at 5M messages over 100 orgs the
    largest had 615k examples and its first per-tag fit alone ran 12 minutes). The
    newest rows are kept because tomorrow's messages look most like today's.
    """
    if n is None or len(df) <= n:
        return df
    return df.sort_values(_ORDER, kind="stable").iloc[-n:].reset_index(drop=True)


def time_split(
    df: pd.DataFrame,
    valid_frac: float = VALID_FRAC,
    test_frac: float = 0.1,
    *,
    min_rows: int = MIN_ROWS,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, valid, test) by time: test is the newest slice, valid the slice before."""
    if not (0 < valid_frac < 1 and 0 < test_frac < 1 and valid_frac + test_frac < 1):
        raise ValueError(
            f"valid_frac={valid_frac}, test_frac={test_frac}: each must be in (0, 1) "
            "and their sum below 1"
        )
    orgs = sorted(map(str, df["org_id"].unique())) if "org_id" in df.columns else []
    org = ", ".join(orgs) or "(unknown org)"
    n = len(df)
    if n < min_rows:
        raise ValueError(
            f"org {org}: {n} examples, at least {min_rows} are needed for a train/valid/test split"
        )
    ordered = df.sort_values(_ORDER, kind="stable").reset_index(drop=True)
    n_test = max(1, round(n * test_frac))
    n_valid = max(1, round(n * valid_frac))
    n_train = n - n_valid - n_test
    if n_train < 1:
        raise ValueError(f"org {org}: {n} examples leave no training rows")
    return (
        ordered.iloc[:n_train].reset_index(drop=True),
        ordered.iloc[n_train : n_train + n_valid].reset_index(drop=True),
        ordered.iloc[n_train + n_valid :].reset_index(drop=True),
    )


def load_tag_lifecycle(lake: Lake, org: str | None = None) -> pd.DataFrame:
    """Latest state per tag: (org_id, tag, created_at, archived_at).

    Events are read in time order, so a tag re-created after being archived is
    active again (``archived_at`` empty). ``archived_at`` is set only when the last
    event is an archive; ``created_at`` is the latest creation (empty if none is known).
    """
    events: pa.Table = read_tag_events(lake, org)
    frame = events.to_pandas()
    columns = ["org_id", "tag", "created_at", "archived_at"]
    if frame.empty:
        return pd.DataFrame(
            {
                c: pd.Series(dtype="datetime64[us, UTC]" if c.endswith("_at") else object)
                for c in columns
            }
        )
    frame["rank"] = frame["action"].map({"created": 0, "archived": 1}).fillna(2)
    frame = frame.sort_values(["org_id", "tag", "at", "rank"], kind="stable")
    created = frame[frame["action"] == "created"].groupby(["org_id", "tag"])["at"].max()
    last = frame.groupby(["org_id", "tag"]).tail(1).set_index(["org_id", "tag"])
    out = pd.DataFrame(index=last.index)
    out["created_at"] = created.reindex(last.index)
    out["archived_at"] = last["at"].where(last["action"] == "archived")
    return out.reset_index()[columns].sort_values(["org_id", "tag"]).reset_index(drop=True)


def archived_digest(tags: Iterable[str]) -> str:
    """sha256 of a set of archived tags: what a registered version has switched off, in
    a fixed-size registry tag, so the retrain policy can tell whether it is still current."""
    return hashlib.sha256("\x1f".join(sorted(tags)).encode()).hexdigest()


def archived_tags(lifecycle: pd.DataFrame, org: str | None, as_of: datetime) -> set[str]:
    """Tags of ``org`` archived at ``as_of`` (serving and training drop them); ``org``
    None: ``lifecycle`` is already one org's rows."""
    mine = lifecycle if org is None else lifecycle[lifecycle["org_id"] == org]
    rows = mine[mine["archived_at"].notna()]
    when = pd.Timestamp(as_of)
    if when.tzinfo is None:
        when = when.tz_localize("UTC")
    return set(rows.loc[rows["archived_at"] <= when, "tag"].astype(str))
