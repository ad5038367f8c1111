"""The small search experiment the search tests share (tests/test_search.py, tests/test_signals.py):
four trials of a tiny model on the synthetic data, and a budget some of its trials exceed."""

TINY = """
[data]
source = "synthetic"

[window]
length = 32
hop = 16

[model]
hidden = [16]
latent = 4

[train]
epochs = 6
patience = 3

[search]
trials = 4
report_every = 2
grace = 1
finalists = 1
seed = 3
default_space = false

[search.space]
window.length = [16, 32]
frontend.kinds = [["raw"], ["stats"]]
model.hidden = [[8], [32]]
"""
BUDGET = "flash=20k,ram=4k,instructions=8k"
