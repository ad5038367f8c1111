# Data part: the synthetic default's difficulty report.

.PHONY: data-report
data-report: $(VENV_STAMP) ## synthetic data: generation time and per-fault difficulty (PCA baseline ROC AUC)
	$(PY) -c 'from tinyae.train.data.synthetic import print_difficulty; print_difficulty()'
