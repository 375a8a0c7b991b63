"""Deterministic sample data: orgs, their tags' lifecycles, messages, replies, posts.

Same seed and arguments give byte-identical files. Output is streamed day by day
(one JSONL file per day and event type), so memory stays bounded by the number of
orgs, not the number of messages: millions of messages need no more memory than
thousands.

Each org draws from one real corpus (see :mod:`corpora`) with its own vocabulary of
10-200 tags (the corpus's real, Zipf-like tag usage), tags created before or during
the period, some archived during it (never applied after), several networks and
message types, pseudonymous authors and agents, saved replies chosen for some inbox
messages, and the org's own posts with hashtags. A small, configurable fraction of
records is deliberately corrupted so that quarantine has real work to show.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from socialsuggest.sampledata.corpora import CORPUS_NAMES, Corpus, Document, load_corpus

ORG_NAMES = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
    "tyrell", "cyberdyne", "soylent", "aperture", "gringotts", "oscorp", "monarch",
    "vandelay",
)  # fmt: skip
_CORRUPTIONS = (
    "missing_text",
    "unknown_network",
    "naive_timestamp",
    "bad_org",
    "tag_not_string",
    "broken_json",
)


@dataclass
class Manifest:
    """What was generated; tests and the run summary reconcile against it."""

    seed: int
    orgs: list[dict[str, Any]]
    start: str
    end: str
    counts: dict[str, int] = field(default_factory=dict)
    invalid_injected: int = 0
    files: list[str] = field(default_factory=list)


def _stable_id(*parts: object, prefix: str, size: int = 8) -> str:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=size).hexdigest()
    return f"{prefix}-{digest}"


@dataclass
class _Org:
    """Per-org generation state: vocabulary, tag lifecycle, pools; no messages kept."""

    name: str
    corpus: Corpus
    rng: random.Random
    vocab: list[str]
    created: dict[str, datetime]
    archived: dict[str, datetime]
    tagged_pool: np.ndarray
    untagged_pool: np.ndarray
    authors: list[str]
    agents: list[str]
    n_replies: int
    share: float
    counter: int = 0

    def active_tags(self, doc: Document, at: datetime) -> list[str]:
        vocab = self._vocab_set
        return [
            t
            for t in doc.tags
            if t in vocab
            and self.created[t] <= at
            and (t not in self.archived or at < self.archived[t])
        ]

    def __post_init__(self) -> None:
        self._vocab_set = frozenset(self.vocab)


def _plan_org(index: int, seed: int, datasets_dir: Path, start: datetime, end: datetime) -> _Org:
    name = ORG_NAMES[index] if index < len(ORG_NAMES) else f"org-{index:04d}"
    corpus = load_corpus(datasets_dir, CORPUS_NAMES[index % len(CORPUS_NAMES)])
    rng = random.Random(f"{seed}:{index}:{name}")
    docs = corpus.documents
    subset = [i for i in range(len(docs)) if rng.random() < 0.7]
    usage = Counter(t for i in subset for t in docs[i].tags)
    vocab_size = min(rng.randint(10, 200), len(usage))
    vocab = [t for t, _ in sorted(usage.items(), key=lambda kv: (-kv[1], kv[0]))[:vocab_size]]
    vocab_set = set(vocab)
    tagged = [i for i in subset if vocab_set.intersection(docs[i].tags)]
    untagged = [i for i in subset if not vocab_set.intersection(docs[i].tags)]
    period = (end - start).total_seconds()
    created: dict[str, datetime] = {}
    archived: dict[str, datetime] = {}
    for tag in vocab:
        if rng.random() < 0.75:
            created[tag] = start - timedelta(
                days=rng.randint(1, 365), seconds=rng.randint(0, 86399)
            )
        else:  # a new tag, introduced during the period
            created[tag] = start + timedelta(seconds=rng.uniform(0, 0.7 * period))
        if rng.random() < 0.1:
            earliest = max(created[tag], start) + timedelta(days=1)
            latest = end - timedelta(hours=1)
            if earliest < latest:
                span = (latest - earliest).total_seconds()
                archived[tag] = earliest + timedelta(seconds=rng.uniform(0.3 * span, span))
    n_authors = rng.randint(200, 2000)
    return _Org(
        name=name,
        corpus=corpus,
        rng=rng,
        vocab=vocab,
        created=created,
        archived=archived,
        tagged_pool=np.asarray(tagged, dtype=np.int32),
        untagged_pool=np.asarray(untagged, dtype=np.int32),
        authors=[_stable_id(seed, name, k, prefix="au") for k in range(n_authors)],
        agents=[_stable_id(seed, name, k, prefix="ag", size=4) for k in range(rng.randint(3, 20))],
        n_replies=rng.randint(5, 30),
        share=1.0 / (index + 1) ** 0.8,
    )


def _zipf_pick(rng: random.Random, items: list[str]) -> str:
    # Pareto rank: a few very active authors, a long tail of one-off ones.
    rank = min(int(rng.paretovariate(1.2)) - 1, len(items) - 1)
    return items[rank]


def _message(org: _Org, day: date, seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = org.rng
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(86400)
    )
    use_tagged = len(org.tagged_pool) and (rng.random() < 0.85 or not len(org.untagged_pool))
    pool = org.tagged_pool if use_tagged else org.untagged_pool
    doc = org.corpus.documents[int(pool[rng.randrange(len(pool))])]
    org.counter += 1
    message_id = _stable_id(seed, org.name, org.counter, prefix="m")
    agent = rng.choice(org.agents)
    tags = org.active_tags(doc, at)
    applied_at = at + timedelta(minutes=rng.randint(1, 240))
    message = {
        "event_type": "message",
        "schema_version": 1,
        "message_id": message_id,
        "org_id": org.name,
        "network": rng.choice(org.corpus.networks),
        "message_type": rng.choice(org.corpus.message_types),
        "author_id": doc.author or _zipf_pick(rng, org.authors),
        "text": doc.text,
        "created_at": at.isoformat(),
        "tags": [
            {"tag": t, "applied_by": agent, "applied_at": applied_at.isoformat()} for t in tags
        ],
    }
    replies = []
    if tags and message["message_type"] in ("direct_message", "mention") and rng.random() < 0.3:
        slot = int(hashlib.blake2b(tags[0].encode(), digest_size=4).hexdigest(), 16)
        replies.append(
            {
                "event_type": "saved_reply_chosen",
                "schema_version": 1,
                "org_id": org.name,
                "message_id": message_id,
                "reply_id": f"reply-{slot % org.n_replies:02d}",
                "at": (applied_at + timedelta(minutes=1)).isoformat(),
                "agent_id": agent,
            }
        )
    return message, replies


#: What agents answer, by habit: a saved reply ``reply-NN`` of an org is one of these.
REPLY_TEMPLATES = (
    "Hi {name}, sorry to hear that. Please DM us your order number and we will look into it.",
    "Thanks {name}! We are glad you liked it, we will pass it on to the team.",
    "Hello {name}, we are aware of the issue and our team is working on a fix right now.",
    "Hi {name}, you can reset your password from the login page using the forgot link.",
    "Sorry for the wait {name}. Our support hours are 8am to 8pm, we will reply first thing.",
    "Hi {name}, refunds take 5 to 7 working days to show on your statement.",
    "Hey {name}, could you send us a screenshot of the error so we can check it?",
    "Hi {name}, that is not something we offer yet but we have noted it as a feature request.",
    "Thanks for flagging this {name}, we have updated the page with the right information.",
    "Hi {name}, please follow us so we can continue this conversation by direct message.",
    "Hello {name}, your delivery is on its way and the tracking link is in your email.",
    "Hi {name}, we are sorry about your experience and have escalated it to a manager.",
)
FIRST_NAMES = (
    "Anna",
    "Ben",
    "Carla",
    "Dev",
    "Emeka",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jo",
    "Kemi",
    "Liam",
    "Mei",
    "Nico",
    "Omar",
    "Pia",
    "Raj",
    "Sara",
    "Tom",
    "Zoe",
)
_FREE_REPLIES = (
    "That route is seasonal, it comes back in May.",
    "We have passed your compliment on to the crew!",
    "Our store on Main Street opens at 9 on Sundays.",
    "Great photo, mind if we share it on our page?",
    "Yes, the large size is back in stock this week.",
    "Happy birthday! Enjoy the day.",
)


def uses_saved_replies(org: str) -> bool:
    """A third of the sample orgs have not adopted saved replies yet: no choice events,
    only the replies their agents type (what the replies bootstrap learns from)."""
    return hash_index(org, 3) != 0


def _reply_sent(
    org: _Org, message: dict[str, Any], reply_id: str | None, seed: int
) -> dict[str, Any] | None:
    """The reply an agent sent: the saved reply they chose, or by habit the one they
    would have, typed with the customer's name and small edits; sometimes free text.
    Its own random stream, so adding it changed no other generated record."""
    tags = message["tags"]
    rng = random.Random(f"{seed}:{message['message_id']}:reply")
    if reply_id is None:
        if not tags or message["message_type"] not in ("direct_message", "mention"):
            return None
        if rng.random() < 0.5:
            return None
        slot = int(hashlib.blake2b(tags[0]["tag"].encode(), digest_size=4).hexdigest(), 16)
        reply_id = f"reply-{slot % org.n_replies:02d}"
    if rng.random() < 0.1:
        text = rng.choice(_FREE_REPLIES)
    else:
        index = (hash_index(org.name, len(REPLY_TEMPLATES)) + int(reply_id[-2:])) % len(
            REPLY_TEMPLATES
        )
        text = REPLY_TEMPLATES[index].format(name=rng.choice(FIRST_NAMES))
        if rng.random() < 0.3:  # agents edit: a softer ask, a dropped word
            text = text.replace("Please", "Could you please").replace(" right now", "")
    sent = datetime.fromisoformat(message["created_at"]) + timedelta(minutes=rng.randint(2, 300))
    return {
        "event_type": "reply_sent",
        "schema_version": 1,
        "org_id": org.name,
        "reply_message_id": f"{message['message_id']}-r",
        "message_id": message["message_id"],
        "agent_id": tags[0]["applied_by"] if tags else rng.choice(org.agents),
        "recipient_id": message["author_id"],
        "text": text,
        "sent_at": sent.isoformat(),
    }


def _post(org: _Org, day: date, source: Corpus, seed: int) -> dict[str, Any]:
    rng = org.rng
    at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(86400)
    )
    doc = source.documents[rng.randrange(len(source.documents))]
    org.counter += 1
    hashtags = doc.hashtags
    text = doc.text if not hashtags else f"{doc.text} " + " ".join(f"#{h}" for h in hashtags)
    return {
        "event_type": "post",
        "schema_version": 1,
        "post_id": _stable_id(seed, org.name, org.counter, prefix="p"),
        "org_id": org.name,
        "network": rng.choice(("twitter", "instagram", "linkedin", "facebook")),
        "author_id": rng.choice(org.agents),
        "text": text,
        "hashtags": list(hashtags),
        "created_at": at.isoformat(),
    }


def _corrupt(record: dict[str, Any], rng: random.Random) -> dict[str, Any] | str:
    kind = rng.choice(_CORRUPTIONS)
    bad = dict(record)
    if kind == "missing_text":
        bad.pop("text", None)
    elif kind == "unknown_network":
        bad["network"] = "myspace"
    elif kind == "naive_timestamp":
        bad["created_at"] = bad["created_at"][:19]
    elif kind == "bad_org":
        bad["org_id"] = bad["org_id"].upper() + " Inc."
    elif kind == "tag_not_string":
        bad["tags"] = [{"tag": None, "applied_by": "ag-x"}]
    else:  # broken_json: a truncated line, as a crashed exporter would leave
        line = json.dumps(bad)
        return line[: rng.randrange(10, len(line) - 1)]
    return bad


class _DayFiles:
    """Append-only JSONL writers for one day, one file per event type."""

    def __init__(self, out: Path, day: date) -> None:
        self.out, self.day = out, day
        self.handles: dict[str, Any] = {}

    def write(self, kind: str, record: dict[str, Any] | str) -> None:
        handle = self.handles.get(kind)
        if handle is None:
            path = self.out / kind / f"{self.day.isoformat()}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.handles[kind] = open(path, "w", encoding="utf-8")  # noqa: SIM115
        line = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
        handle.write(line + "\n")

    def close(self) -> list[str]:
        for handle in self.handles.values():
            handle.close()
        return [f"{kind}/{self.day.isoformat()}.jsonl" for kind in sorted(self.handles)]


def generate(
    out: Path,
    *,
    datasets_dir: Path,
    orgs: int = 8,
    messages: int = 20_000,
    days: int = 30,
    end: date | None = None,
    seed: int = 42,
    invalid_rate: float = 0.002,
    posts_per_message: float = 0.1,
    progress: Callable[[int], None] | None = None,
) -> Manifest:
    """Write sample events under ``out``; return the manifest (also saved as JSON)."""
    if orgs < 1:
        raise ValueError("orgs: must be at least 1")
    if messages < orgs:
        raise ValueError(f"messages: must be at least the number of orgs ({orgs})")
    if days < 1:
        raise ValueError("days: must be at least 1")
    if not 0 <= invalid_rate < 1:
        raise ValueError("invalid_rate: must be in [0, 1)")
    end = end or datetime.now(UTC).date()
    start_day = end - timedelta(days=days)
    start = datetime(start_day.year, start_day.month, start_day.day, tzinfo=UTC)
    end_dt = datetime(end.year, end.month, end.day, tzinfo=UTC)
    plans = [_plan_org(i, seed, datasets_dir, start, end_dt) for i in range(orgs)]
    post_sources = [load_corpus(datasets_dir, n) for n in CORPUS_NAMES if n.startswith("tw_")]
    per_org = _split(messages, [p.share for p in plans])
    corrupt_rng = random.Random(f"{seed}:corrupt")
    out.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(
        seed=seed,
        orgs=[
            {
                "org": p.name,
                "corpus": p.corpus.name,
                "messages": n,
                "vocabulary": len(p.vocab),
                "new_tags": sum(1 for t in p.vocab if p.created[t] >= start),
                "archived_tags": len(p.archived),
                "saved_replies": p.n_replies,
            }
            for p, n in zip(plans, per_org, strict=True)
        ],
        start=start_day.isoformat(),
        end=end.isoformat(),
    )
    counts: Counter[str] = Counter()
    tag_file = _write_tag_events(out, plans, seed)
    counts["tag_lifecycle"] = tag_file[1]
    manifest.files.append(tag_file[0])
    for d in range(days):
        day = start_day + timedelta(days=d)
        files = _DayFiles(out, day)
        for org, total in zip(plans, per_org, strict=True):
            n_today = total // days + (1 if d < total % days else 0)
            for _ in range(n_today):
                message, replies = _message(org, day, seed)
                record: dict[str, Any] | str = message
                if invalid_rate and corrupt_rng.random() < invalid_rate:
                    record = _corrupt(message, corrupt_rng)
                    manifest.invalid_injected += 1
                files.write("messages", record)
                counts["message"] += 1
                sent = _reply_sent(org, message, replies[0]["reply_id"] if replies else None, seed)
                if not uses_saved_replies(org.name):
                    replies = []
                for reply in replies:
                    files.write("reply_choices", reply)
                    counts["saved_reply_chosen"] += 1
                if sent is not None:
                    files.write("replies_sent", sent)
                    counts["reply_sent"] += 1
                if org.rng.random() < posts_per_message:
                    source = post_sources[hash_index(org.name, len(post_sources))]
                    files.write("posts", _post(org, day, source, seed))
                    counts["post"] += 1
            if progress is not None:
                progress(n_today)
        manifest.files.extend(files.close())
    manifest.counts = dict(counts)
    (out / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def hash_index(value: str, size: int) -> int:
    return int(hashlib.blake2b(value.encode(), digest_size=4).hexdigest(), 16) % size


def _split(total: int, weights: list[float]) -> list[int]:
    """Integer shares of ``total`` proportional to ``weights``, each at least 1."""
    raw = [total * w / sum(weights) for w in weights]
    shares = [max(1, int(r)) for r in raw]
    remainder = total - sum(shares)
    order = sorted(range(len(raw)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    for i in range(abs(remainder)):
        shares[order[i % len(order)]] += 1 if remainder > 0 else -1
    return shares


def _write_tag_events(out: Path, plans: list[_Org], seed: int) -> tuple[str, int]:
    path = out / "tag_events.jsonl"
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        for org in plans:
            for tag in org.vocab:
                lifecycle = [("created", org.created[tag])]
                if tag in org.archived:
                    lifecycle.append(("archived", org.archived[tag]))
                for action, at in lifecycle:
                    event = {
                        "event_type": "tag_lifecycle",
                        "schema_version": 1,
                        "org_id": org.name,
                        "tag": tag,
                        "action": action,
                        "at": at.isoformat(),
                        "actor_id": org.agents[hash_index(f"{seed}{tag}", len(org.agents))],
                    }
                    handle.write(json.dumps(event, ensure_ascii=False) + "\n")
                    written += 1
    return path.name, written
