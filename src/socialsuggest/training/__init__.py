"""Per-org training and its evaluation metrics."""

from socialsuggest.training.metrics import (
    auc,
    auc_with_ci,
    average_precision_at_k,
    evaluate_model,
    evaluate_suggestions,
    f_beta,
    hamming_loss,
    hanley_mcneil_se,
    hit_rate_at_k,
    map_at_k,
    mean_tag_auc,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "auc",
    "auc_with_ci",
    "average_precision_at_k",
    "evaluate_model",
    "evaluate_suggestions",
    "f_beta",
    "hamming_loss",
    "hanley_mcneil_se",
    "hit_rate_at_k",
    "map_at_k",
    "mean_tag_auc",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]
