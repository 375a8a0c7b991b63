"""The MLflow pyfunc face of a tag model: raw request rows in, suggestions out.

The wrapper applies the *same* ``clean_text`` the Spark preprocessing used, so a
model loaded anywhere (the serving app, ``mlflow models serve``, a notebook) sees
text exactly as it was trained on; there is no second cleaning implementation to
drift.
"""

from __future__ import annotations

import pickle
from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from socialsuggest.processing.text import clean_text

INPUT_COLUMNS = ("text", "network", "message_type")


class TagSuggesterModel(PythonModel):  # type: ignore[misc]
    """Pickled :class:`~socialsuggest.models.tags.TagModel` behind the pyfunc API."""

    def __init__(self, model: Any = None, k: int = 3) -> None:
        self.model = model
        self.k = k

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["model"], "rb") as handle:
            self.model = pickle.load(handle)
        if getattr(self.model, "features", None) is not None:
            _ = self.model.features.one_row  # built at load, not on the first request

    def compact(self) -> None:
        """The serving form (``FeatureBuilder.compact``: vocabularies hashed, their
        dictionaries dropped). Only the serving cache calls it: a compacted model cannot
        be pickled again, which the tag cycle does with a production model it edits."""
        features = getattr(self.model, "features", None)
        if features is not None and hasattr(features, "compact"):
            features.compact()

    def suggest_one(
        self,
        text: str,
        network: str | None = None,
        message_type: str | None = None,
        k: int | None = None,
    ) -> list[dict[str, Any]]:
        """One message's suggestions: the serving path, with no DataFrame on the way."""
        suggestions = self.model.suggest_one(
            clean_text(text),
            {"network": network, "message_type": message_type},
            k=k or self.k,
            mode="hybrid",
        )
        return _as_dicts(suggestions)

    def suggest_frame(
        self, frame: pd.DataFrame, k: int | None = None
    ) -> list[list[dict[str, Any]]]:
        missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"model input: missing column(s) {missing}")
        # built from plain lists: .loc/.copy cost more than the model for one row
        prepared = pd.DataFrame(
            {
                c: [clean_text(str(t)) for t in frame["text"].tolist()]
                if c == "text"
                else frame[c].tolist()
                for c in INPUT_COLUMNS
            }
        )
        rows = self.model.suggest(prepared, k=k or self.k, mode="hybrid")
        return [_as_dicts(row) for row in rows]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", self.k))
        if len(model_input) == 1 and all(c in model_input.columns for c in INPUT_COLUMNS):
            row = model_input.iloc[0]  # one request, as a scoring server sends it
            suggested = [self.suggest_one(str(row["text"]), row["network"], row["message_type"], k)]
        else:
            suggested = self.suggest_frame(model_input, k)
        return pd.DataFrame(
            {
                "tags": [[s["tag"] for s in row] for row in suggested],
                "scores": [[s["score"] for s in row] for row in suggested],
                "sources": [[s["source"] for s in row] for row in suggested],
            }
        )


def _as_dicts(suggestions: list[Any]) -> list[dict[str, Any]]:
    return [
        {"tag": s.tag, "score": round(float(s.score), 6), "source": s.source} for s in suggestions
    ]


HASHTAG_INPUT_COLUMNS = ("text", "hashtags")


class HashtagSuggesterModel(PythonModel):  # type: ignore[misc]
    """Pickled :class:`~socialsuggest.models.hashtags.HashtagModel` behind the pyfunc API.

    A draft is parsed by ``parse_draft``, the function the posts preprocessing applied
    to every training post (words and hashtags apart, stop words out).
    """

    def __init__(self, model: Any = None, k: int = 3) -> None:
        self.model = model
        self.k = k

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["model"], "rb") as handle:
            self.model = pickle.load(handle)

    def suggest_one(
        self, text: str, hashtags: list[str] | tuple[str, ...] = (), k: int | None = None
    ) -> list[dict[str, Any]]:
        from socialsuggest.models.hashtags.text import parse_draft

        suggestions = self.model.suggest(parse_draft(text, list(hashtags)), k=k or self.k)
        return [
            {"hashtag": s.hashtag, "score": round(float(s.score), 6), "source": s.source}
            for s in suggestions
        ]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", self.k))
        if "text" not in model_input.columns:
            raise ValueError("model input: missing column(s) ['text']")
        given = model_input["hashtags"] if "hashtags" in model_input.columns else None
        rows = [
            self.suggest_one(str(text), list(given.iloc[i]) if given is not None else [], k)
            for i, text in enumerate(model_input["text"].tolist())
        ]
        return pd.DataFrame(
            {
                "hashtags": [[s["hashtag"] for s in row] for row in rows],
                "scores": [[s["score"] for s in row] for row in rows],
                "sources": [[s["source"] for s in row] for row in rows],
            }
        )


class ReplyRankerModel(PythonModel):  # type: ignore[misc]
    """Pickled :class:`~socialsuggest.models.replies.ReplyRanker` behind the pyfunc API.

    A message is cleaned by ``clean_text``, as the ranker's training messages were.
    """

    def __init__(self, model: Any = None, k: int = 3) -> None:
        self.model = model
        self.k = k

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["model"], "rb") as handle:
            self.model = pickle.load(handle)

    def rank_one(self, text: str, k: int | None = None) -> list[dict[str, Any]]:
        ranked = self.model.rank(clean_text(text), k or self.k)
        texts = getattr(self.model, "texts", {})
        return [
            {"reply_id": reply, "score": round(float(score), 6), "text": texts.get(reply)}
            for reply, score in ranked
        ]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", self.k))
        if "text" not in model_input.columns:
            raise ValueError("model input: missing column(s) ['text']")
        rows = [self.rank_one(str(t), k) for t in model_input["text"].tolist()]
        return pd.DataFrame(
            {
                "reply_ids": [[r["reply_id"] for r in row] for row in rows],
                "scores": [[r["score"] for r in row] for row in rows],
            }
        )


class TrendsModel(PythonModel):  # type: ignore[misc]
    """A :class:`~socialsuggest.models.trends.TrendDetector` (config and code) behind the
    pyfunc API: posts in (created_at, author_id, text, hashtags), the newest window's
    trends out."""

    def __init__(self, model: Any = None) -> None:
        self.model = model

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["model"], "rb") as handle:
            self.model = pickle.load(handle)

    def detect(self, posts: pd.DataFrame) -> list[dict[str, Any]]:
        from dataclasses import asdict

        from socialsuggest.models.trends import TrendDetector

        frame = posts.assign(created_at=pd.to_datetime(posts["created_at"], utc=True))
        runs = TrendDetector(self.model.config).run(frame)  # fresh state: no request leaks
        windows = runs.get("all", [])
        return [asdict(t) for t in windows[-1][1]] if windows else []

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        trends = self.detect(model_input)
        return pd.DataFrame(
            {
                "hashtag": [t["hashtag"] for t in trends],
                "score": [t["score"] for t in trends],
            }
        )
