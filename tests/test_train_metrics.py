import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyae.train import metrics


def brute_auc(labels, scores):
    pos = scores[labels == 1]
    neg = scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=2, max_size=40))
def test_roc_auc_matches_pairwise_definition(pairs):
    labels = np.array([p[0] for p in pairs], int)
    scores = np.array([p[1] for p in pairs], float)
    if labels.min() == labels.max():
        assert np.isnan(metrics.roc_auc(labels, scores))
        return
    assert abs(metrics.roc_auc(labels, scores) - brute_auc(labels, scores)) < 1e-12


def test_perfect_and_inverted_ranking():
    y = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert metrics.pr_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0


def test_at_threshold_counts():
    r = metrics.at_threshold(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    assert (r["tp"], r["fp"], r["fn"], r["tn"]) == (1, 1, 1, 1)
    assert r["precision"] == r["recall"] == r["f1"] == 0.5
