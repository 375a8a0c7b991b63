"""Deterministic sample data drawn from real corpora (for demos, tests, benchmarks)."""

from socialsuggest.sampledata.corpora import CORPUS_NAMES, Corpus, Document, load_corpus
from socialsuggest.sampledata.generator import Manifest, generate

__all__ = ["CORPUS_NAMES", "Corpus", "Document", "Manifest", "generate", "load_corpus"]
