"""Experiments without affecting users: a ``challenger`` beside ``production``.

Two modes, as the original team needed them:

* **shadow** — every request is answered by the champion (``production``); the
  challenger also predicts, and its suggestions are logged, never shown. Safe for
  any candidate; measures agreement and latency, not acceptance.
* **ab** — a stable share of *users* sees the challenger. The unit is the
  ``agent_id`` (the user of the customer's tool) or a ``session_id``: hashing the unit
  with the org keeps one user on one variant across requests and processes, which
  is what makes acceptance comparable. Requests with no unit stay on the champion.

The experiment lives in the registry (the ``challenger`` alias plus a registered-model
tag), so starting or stopping one is an auditable registry change every serving
process follows, like a promotion. This module is pure: assignment and the
statistics of the comparison; I/O is in ``registry`` and ``pipeline``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from socialsuggest.serving.acceptance import wilson_interval

Mode = Literal["shadow", "ab"]
Variant = Literal["champion", "challenger"]
EXPERIMENT_TAG = "experiment"  # registered-model tag holding the JSON below
MODES: tuple[Mode, ...] = ("shadow", "ab")


@dataclass(frozen=True)
class Experiment:
    mode: Mode
    challenger_version: int
    fraction: float  # share of units on the challenger (ab); 0 for shadow
    started_at: str
    actor: str
    reason: str

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction: {self.fraction} is not between 0 and 1")
        if self.mode == "ab" and self.fraction == 0.0:
            raise ValueError("fraction: an A/B experiment needs a fraction above 0")

    def to_tag(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_tag(cls, value: str) -> Experiment:
        data: dict[str, Any] = json.loads(value)
        return cls(**data)


def bucket(org: str, unit: str) -> float:
    """A stable position in [0, 1) for a unit within an org (same on every process)."""
    digest = hashlib.sha256(f"{org}\x1f{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(experiment: Experiment | None, org: str, unit: str | None) -> Variant:
    """Which variant answers this request (shadow: always the champion)."""
    if experiment is None or experiment.mode != "ab" or not unit:
        return "champion"
    return "challenger" if bucket(org, unit) < experiment.fraction else "champion"


@dataclass(frozen=True)
class Comparison:
    champion_shown: int
    champion_accepted: int
    challenger_shown: int
    challenger_accepted: int
    champion_rate: float | None
    challenger_rate: float | None
    difference: float | None  # challenger − champion
    low: float | None  # 95% interval of the difference (Newcombe, from Wilson intervals)
    high: float | None
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(
    champion: tuple[int, int], challenger: tuple[int, int], *, min_shown: int = 30
) -> Comparison:
    """Challenger minus champion acceptance, with a 95% interval (Newcombe's method 10).

    ``champion`` and ``challenger`` are ``(accepted, shown)``. The verdict is
    ``better``/``worse`` only when the interval excludes 0, ``no difference yet``
    otherwise, and ``too little data`` below ``min_shown`` on either side.
    """
    (a1, n1), (a2, n2) = champion, challenger
    if n1 < min_shown or n2 < min_shown:
        return Comparison(n1, a1, n2, a2, _rate(a1, n1), _rate(a2, n2), None, None, None,
                          "too little data")  # fmt: skip
    p1, p2 = a1 / n1, a2 / n2
    l1, u1 = wilson_interval(a1, n1) or (0.0, 1.0)
    l2, u2 = wilson_interval(a2, n2) or (0.0, 1.0)
    difference = p2 - p1
    low = difference - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = difference + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    verdict = "better" if low > 0 else "worse" if high < 0 else "no difference yet"
    return Comparison(n1, a1, n2, a2, p1, p2, difference, low, high, verdict)


def _rate(accepted: int, shown: int) -> float | None:
    return accepted / shown if shown else None
