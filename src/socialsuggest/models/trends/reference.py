"""The reference collection trend detectors are judged on: real tweets with timestamps.

../shared/datasets/raw/tweets/grammys_tweets.csv: 10,000 tweets about the GRAMMYs over
24-27 Nov 2021 (80 hours), with author, verified flag and hashtags. It is read here,
by the family, because the model gate needs it: the sample lake's posts have random
times within their day, so they hold no trend to find.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pandas as pd

from socialsuggest.models.hashtags.text import normalise_hashtag


def load_reference(datasets_dir: Path, collection: str = "grammys") -> pd.DataFrame:
    """Posts (created_at, author_id, text, hashtags, segment) of a tweet collection."""
    rows = []
    path = datasets_dir / "raw" / "tweets" / f"{collection}_tweets.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                tags = ast.literal_eval(row["hashtags"]) if row["hashtags"] else []
            except (ValueError, SyntaxError):
                tags = []
            rows.append(
                {
                    "created_at": row["date"],
                    "author_id": row["user_name"],
                    "text": row["text"],
                    "hashtags": [normalise_hashtag(t) for t in tags if isinstance(t, str)],
                    "segment": "verified" if row.get("user_verified") == "True" else "unverified",
                }
            )
    posts = pd.DataFrame(rows)
    posts["created_at"] = pd.to_datetime(posts["created_at"], utc=True, errors="coerce")
    return posts.dropna(subset=["created_at"]).sort_values("created_at").reset_index(drop=True)
