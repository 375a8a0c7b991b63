"""The Spark fan-out gives each org a task of its own, in the order it is given.

Tasks start in partition order, so ``largest_first`` order starts the largest orgs
first, as the pool does; and no task holds two orgs, so none waits behind another.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from socialsuggest.training.fanout import _one_org_per_task


def _orgs_by_partition(frame: Any) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for row in frame.select(F.spark_partition_id().alias("p"), "org_id").distinct().collect():
        found.setdefault(row["p"], set()).add(row["org_id"])
    return found


def test_each_org_gets_a_task_of_its_own_in_the_order_given(spark: SparkSession) -> None:
    orgs = [f"org-{i:04d}" for i in range(100)]  # the synthetic lakes' names
    rows = [(org, i) for k, org in enumerate(orgs) for i in range(1 + k % 3)]
    frame = spark.createDataFrame(rows, "org_id string, n int")
    # the control: hashing the org ids into as many partitions leaves tasks empty and
    # puts several orgs in others (what the fan-out did until 2026-12-07)
    hashed = _orgs_by_partition(frame.repartition(len(orgs), "org_id"))
    assert len(hashed) < 80 and max(len(v) for v in hashed.values()) >= 3

    order = orgs[::7] + [o for o in orgs if o not in orgs[::7]]  # any order but names'
    placed = _one_org_per_task(spark, frame, order)
    assert placed.rdd.getNumPartitions() == len(orgs)
    assert _orgs_by_partition(placed) == {i: {org} for i, org in enumerate(order)}
    assert placed.count() == len(rows)  # the join to the slots keeps every row
