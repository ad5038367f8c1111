"""Budget-constrained model search: `tinyae search` (tools/search/cli.py).

Ray Tune runs the trials (locally, or on a cluster with --address), Optuna's sampler proposes them,
ASHA stops poor ones early; each trial is scored by its int8 detection quality on labelled selection
windows (tools/search/data.py) and checked against the device budget by the budget estimator
(tools/budget/estimate.py, tools/budget/cost.py). The best feasible trials are trained again from their
TOML and measured on the emulated board (tools/search/finalists.py).
"""
