"""Labels in either convention, on every source: one check (tinyae.train.data.labels.training_labels_refusal
through prepare_splits) refuses training data that are mostly anomalous under an assumed reading, names
the setting that fixes each reading, and the counts the manifest records are true."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyae.errors import UserError
from tinyae.train import config
from tinyae.train.data import prepare
from tinyae.train.data.datasets import load_source
from tinyae.train.data.splits import prepare_splits


def ucr_file(path: Path, normal_label: str, anomalous_label: str, n_normal: int, n_anomalous: int) -> Path:
    """A UCR file (label, values...) of sine cases (normal) and spiky cases (anomalous), interleaved."""
    rng = np.random.default_rng(0)
    rows = []
    n = n_normal + n_anomalous
    for i in range(n):
        anomalous = (i * n_anomalous) // n != ((i + 1) * n_anomalous) // n  # spread evenly
        x = np.sin(np.linspace(0, 6, 96) + rng.uniform(0, 1)) + 0.05 * rng.standard_normal(96)
        if anomalous:
            x[40:50] += 3.0
        rows.append(",".join([anomalous_label if anomalous else normal_label, *(f"{v:.5f}" for v in x)]))
    path.write_text("\n".join(rows) + "\n")
    return path


def ucr_cfg(path: Path, *extra: str) -> config.DataConfig:
    return config.load(
        None, ["data.source='ucr'", f"data.paths=['{path}']", "data.sample_rate_hz=100", *extra]
    ).data


def test_ucr_labels_in_the_other_convention_are_refused_naming_data_normal(tmp_path):
    """TensorFlow's ECG tutorial writes 1 = normal (the majority); read as 0 = normal, the model would
    train on the anomalous rows. Refused; data.normal = 1 trains on the normal ones."""
    p = ucr_file(tmp_path / "ecg.tsv", "1", "0", 60, 30)
    with pytest.raises(UserError) as err:
        prepare(ucr_cfg(p), 32, 32)
    text = str(err.value)
    assert 'labelled anomalous under "0 = normal, 1 = anomaly (assumed' in text
    assert "set data.normal = 1" in text and "set data.normal = 0" in text and "\n" not in text
    prep = prepare(ucr_cfg(p, "data.normal=1"), 32, 32)
    # the anomalous (label 0) cases of the training part are counted in windows, not silently filtered
    train_cases = 90 - round(90 * 0.2)  # the rest is the test part
    n_anomalous_train = sum((i * 30) // 90 != ((i + 1) * 30) // 90 for i in range(train_cases))
    assert prep.dropped[0] == n_anomalous_train * 3  # 3 windows of 32 per 96-sample case
    assert prep.test_labels is not None and 0 < prep.test_labels.sum() < len(prep.test_labels)
    # the conventional file (0 = normal, the majority) needs no setting
    q = ucr_file(tmp_path / "ok.tsv", "0", "1", 60, 30)
    assert len(prepare(ucr_cfg(q), 32, 32).train) > 0


def test_ucr_train_and_test_files_share_one_reading(tmp_path):
    """data.normal names a class that only the TEST file holds as well: one meaning over all files."""
    tr = ucr_file(tmp_path / "X_TRAIN.tsv", "normal", "fault", 20, 0)
    te = ucr_file(tmp_path / "X_TEST.tsv", "normal", "fault", 10, 10)
    cfg = config.load(None, ["data.source='ucr'", f"data.paths=['{tr}', '{te}']", "data.sample_rate_hz=50"])
    prep = prepare(cfg.data, 32, 32)
    assert prep.test_labels is not None and prep.test_labels.sum() == 30  # 10 fault cases x 3 windows
    splits = load_source(cfg.data, 32)
    assert splits.info["labels"]["said"] is False and "normal = normal" in splits.info["labels"]["meaning"]


def test_a_multi_file_set_names_both_readings(tmp_path):
    """Every file of a multi-file set in data.paths, the faulty ones (labelled 1 throughout) included:
    the sentence says that data.normal = 0 trains on the normal windows."""
    t = np.arange(3000) / 100

    def rec(name: str, fault: bool) -> Path:
        x = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)], 1) + (0.7 if fault else 0)
        lab = np.full(len(t), int(fault))
        p = tmp_path / name
        p.write_text(
            "time,a,b,label\n"
            + "".join(f"{ti:.2f},{a:.5f},{b:.5f},{y}\n" for ti, (a, b), y in zip(t, x, lab, strict=True))
        )
        return str(p)

    paths = [rec("normal.csv", False), rec("fault1.csv", True), rec("fault2.csv", True)]
    base = ["data.source='csv'", f"data.paths={json.dumps(paths)}"]
    with pytest.raises(UserError) as err:
        prepare(config.load(None, base).data, 64, 32)
    text = str(err.value)
    assert "set data.normal = 0 to train on the" in text and "set data.normal = 1" in text
    prep = prepare(config.load(None, [*base, "data.normal=0"]).data, 64, 32)
    assert prep.dropped[0] > len(prep.train) > 0  # counted: the faulty files' training windows


@pytest.mark.parametrize(("normal", "fault"), [("0", "1"), ("1", "0")])
def test_edge_impulse_files_in_either_convention(tmp_path, normal, fault):
    """A folder of Edge Impulse files labelled by name (`0.run1.json`): 0 = normal passes as assumed;
    1 = normal (most files) is refused naming data.normal = 1, which then trains on the right files."""
    from test_data_edgeimpulse import acquisition, motion, write

    d = tmp_path / "ei"
    for i in range(3):
        write(d / f"{normal}.run{i}.json", acquisition(motion(1000, i)))
    write(d / f"{fault}.bad.cbor", acquisition(motion(1000, 7, fault=True)))
    base = ["data.source='edgeimpulse'", f"data.paths=['{d}']"]
    if normal == "0":
        prep = prepare(config.load(None, base).data, 64, 32)
    else:
        with pytest.raises(UserError, match=r"set data\.normal = 1") as err:
            prepare(config.load(None, base).data, 64, 32)
        assert "training samples" in str(err.value)
        prep = prepare(config.load(None, [*base, "data.normal=1"]).data, 64, 32)
    assert prep.test_labels is not None and prep.test_labels.sum() == 1000 // 32 - 1  # the bad file, whole


def test_synthetic_labels_are_the_generators(tmp_path):
    splits = load_source("synthetic", 64)
    assert splits.info["labels"]["said"] is True
    assert prepare_splits(splits, 64, 32).dropped == (0, 0)


def test_basicmotions_counts_the_cases_it_leaves_out():
    pytest.importorskip("aeon")
    prep = prepare({"source": "basicmotions"}, 20, 5)
    assert prep.dropped[0] > 0  # Running and Badminton cases of TRAIN: counted, not silently filtered
    custom = prepare({"source": "basicmotions", "normal": ["Running"]}, 20, 5)
    assert len(custom.train) < len(prep.train)


@pytest.mark.parametrize("source", ["internalbleeding", "daphnet"])
def test_named_data_sets_take_data_normal_and_name_it(source):
    pytest.importorskip("aeon")
    with pytest.raises(UserError, match=r"data\.normal") as err:
        prepare({"source": source, "normal": ["1"]}, 64, 32)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------- a file read with a model's meaning
# The manifest's data.label of a 0/1 model (the synthetic data set's), and of one written before the
# anomalous classes were recorded: its text alone says 1 is the anomalous class.
MODEL_01 = {"normal": ["0.0"], "said": True, "meaning": "0 = normal, 1 = a fault", "anomalous": ["1.0"]}
MODEL_01_OLD = {"normal": ["0.0"], "said": False, "meaning": "0 = normal, 1 = anomaly (assumed; ...)"}
MODEL_NAMED = {
    "normal": ["ok"],
    "said": True,
    "meaning": "ok = normal; fault = anomaly",
    "anomalous": ["fault"],
}


def model_manifest(label: dict) -> dict:
    return {
        "window": {"channel_names": ["a", "b"], "sample_rate_hz": 10.0},
        "data": {"label": {"column": "label", **label}},
    }


def labelled_csv(path: Path, labels: list[str]) -> Path:
    path.write_text("a,b,label\n" + "".join(f"{i},{i % 7},{v}\n" for i, v in enumerate(labels)))
    return path


def refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as e:
        fn(*args, **kwargs)
    return str(e.value)


@pytest.mark.parametrize("label", [MODEL_01, MODEL_01_OLD], ids=["manifest", "older-manifest"])
@pytest.mark.parametrize(
    "values, unknown",
    [
        (["1", "-1"], "value -1"),  # scikit-learn's 1 = normal, -1 = outlier
        (["normal", "fault"], "values fault, normal"),
        (["True", "False"], "values False, True"),
        (["0", "1", "2"], "value 2"),
    ],
)
def test_label_values_outside_the_models_classes_are_refused(tmp_path, label, values, unknown):
    """Audit D1: every such value read as anomalous (verify printed TP 22 FP 0 FN 102 TN 0 and PASS)."""
    from tinyae.train.data.settings import load_for_model

    path = labelled_csv(tmp_path / "run.csv", [values[i * len(values) // 40] for i in range(40)])
    message = refusal(load_for_model, str(path), model_manifest(label))
    assert f"run.csv (label column 'label') has label {unknown} that the model's classes " in message, message
    assert "(0 = normal, 1 = anomalous)" in message and "--normal" in message and "\n" not in message


def test_the_models_own_classes_read_as_they_mean(tmp_path):
    from tinyae.train.data.settings import load_for_model

    (s,), _ = load_for_model(
        str(labelled_csv(tmp_path / "a.csv", ["0"] * 20 + ["1"] * 20)), model_manifest(MODEL_01)
    )
    assert s.labels is not None and s.labels.tolist() == [0] * 20 + [1] * 20
    named = labelled_csv(tmp_path / "b.csv", ["ok"] * 20 + ["fault"] * 20)
    (s,), _ = load_for_model(str(named), model_manifest(MODEL_NAMED))
    assert s.labels is not None and s.labels.tolist() == [0] * 20 + [1] * 20
    new_fault = labelled_csv(tmp_path / "c.csv", ["ok"] * 20 + ["bearing"] * 20)
    message = refusal(load_for_model, str(new_fault), model_manifest(MODEL_NAMED))
    assert "has label value bearing that the model's classes (ok = normal, fault = anomalous)" in message


def test_normal_states_the_files_own_meaning(tmp_path):
    from tinyae.train.data.settings import load_for_model

    path = labelled_csv(tmp_path / "pm1.csv", ["1"] * 30 + ["-1"] * 10)
    (s,), _ = load_for_model(str(path), model_manifest(MODEL_01), normal=["1"])
    assert s.labels is not None and s.labels.tolist() == [0] * 30 + [1] * 10
    message = refusal(load_for_model, str(path), model_manifest(MODEL_01), normal=["0"])
    assert "normal class '0' (--normal) does not occur" in message and "fix --normal" in message


def test_training_records_the_anomalous_classes(tmp_path):
    from tinyae.train.data import load_csv

    (s,) = load_csv(labelled_csv(tmp_path / "t.csv", ["ok"] * 20 + ["fault"] * 20), normal="ok")
    assert s.meta["labels"]["anomalous"] == ["fault"]
    (s,) = load_csv(labelled_csv(tmp_path / "u.csv", ["0"] * 20 + ["1"] * 20))
    assert s.meta["labels"]["anomalous"] == ["1.0"]


def test_data_without_an_anomalous_class_keep_the_0_1_convention(tmp_path):
    """Normal-only training labels: a 0 = normal model still knows 1 as anomalous, a named class none."""
    from tinyae.train.data.labels import label_meaning

    assert label_meaning(["0"], "0", "x").anomalous == {"1.0"}
    assert label_meaning(["ok"], "ok", "x").anomalous is None
    assert label_meaning(["normal"], None, "x").anomalous is None
