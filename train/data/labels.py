"""What a label means: which values are normal, said by the user or inferred and then printed.

- `data.normal` (a value or a list) names the normal values; every other value is an anomaly. Each
  named value must occur somewhere in the data (a typo must not make every window anomalous).
- Without it: labels that are all 0/1 read as 0 = normal, 1 = anomaly, and a class called "normal"
  is the normal class; the meaning is printed and written to the manifest as assumed, so a 1 = normal
  file (TensorFlow's ECG tutorial data) is visible at once. Any other set of classes is refused.
- Every source (CSV, UCR/UEA, Edge Impulse, the named data sets) hands its meaning to the split
  (tinyae.train.data.splits.prepare_splits), which refuses training data that are mostly anomalous
  under an assumed reading (`training_labels_refusal`): one check for every source.
Numbers compare as numbers ("1" == "1.0"), anything else as text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tinyae.errors import UserError, printable, printable_list


def canon(value: str) -> str:
    """Class names compare as text, numbers as numbers ("1" == "1.0")."""
    try:
        return repr(float(value))
    except ValueError:
        return value.strip()


def _show(values: Sequence[str], n: int = 12) -> str:
    return printable_list(values, n)


@dataclass(frozen=True)
class LabelMeaning:
    normal: frozenset[str]  # canonical values that mean normal
    said: bool  # True when data.normal gave them, False when inferred
    text: str  # one line for the summary and the manifest

    def is_normal(self, value: str) -> bool:
        return canon(value) in self.normal

    def to_dict(self) -> dict:
        return {"normal": sorted(self.normal), "said": self.said, "meaning": self.text}


def label_meaning(values: Iterable[str], normal: Sequence[str] | str | None, where: str) -> LabelMeaning:
    present = sorted({v.strip() for v in values})
    if isinstance(normal, str):
        normal = [normal]
    if normal:
        wanted = [str(n).strip() for n in normal]
        have = {canon(p) for p in present}
        missing = [w for w in wanted if canon(w) not in have]
        if missing:
            raise UserError(
                f"normal class {printable(repr(missing[0]))} (data.normal) does not occur in {printable(where, None)}; "
                f"its classes are {_show(present)}: fix data.normal"
            )
        keep = {canon(w) for w in wanted}
        others = [p for p in present if canon(p) not in keep]
        text = (
            f"{_show(wanted, len(wanted))} = normal; "
            f"{_show(others) or 'nothing else occurs'} = anomaly (data.normal)"
        )
        return LabelMeaning(frozenset(keep), True, text)
    if present and {canon(p) for p in present} <= {canon("0"), canon("1")}:
        return LabelMeaning(
            frozenset({canon("0")}),
            False,
            "0 = normal, 1 = anomaly (assumed; set data.normal = 1 if 1 means normal)",
        )
    named = [p for p in present if p.lower() == "normal"]
    if named:
        others = [p for p in present if p not in named]
        return LabelMeaning(
            frozenset({canon(named[0])}),
            False,
            f"{printable(named[0])} = normal; {_show(others) or 'nothing else occurs'} "
            "= anomaly (assumed from the class "
            "name; set data.normal otherwise)",
        )
    raise UserError(
        f"{printable(where, None)} has classes {_show(present)} (not 0/1); pass normal=[...] (data.normal) "
        "naming the normal "
        "class(es)"
    )


def to_labels(
    codes: np.ndarray, values: Sequence[str], meaning: LabelMeaning
) -> tuple[np.ndarray, np.ndarray | None]:
    """(int8 labels, per-sample class names or None for plain 0/1 labels) from label codes."""
    normal = np.array([meaning.is_normal(v) for v in values], bool)
    labels = (~normal[codes]).astype(np.int8)
    plain = {canon(v) for v in values} <= {canon("0"), canon("1")}
    classes = None if plain else np.array([v.strip() for v in values], dtype=object)[codes]
    return labels, classes


def labels_from_classes(
    classes: Sequence[str], normal: str | Sequence[str] | None, where: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """(int8 labels, class array or None) for a list of per-case or per-sample classes."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(c, len(index)) for c in classes), np.int32, len(classes))
    return to_labels(codes, list(index), label_meaning(index, normal, where))


def training_labels_refusal(
    meaning: dict, anomalous: int, normal: int, throughout: int, where: str, unit: str = "windows"
) -> str:
    """The sentence refusing training data whose windows are mostly anomalous under an *assumed* reading
    of the labels (empty when the reading was said with data.normal, or most windows are normal).

    meaning: LabelMeaning.to_dict() of the source (empty without labels); anomalous / normal: training
    windows with / without an anomalous sample; throughout: windows anomalous in every sample (the normal
    ones under the opposite 0/1 reading). The sentence names the setting that fixes each reading.
    """
    if not meaning or meaning.get("said") or anomalous <= normal:
        return ""
    total = anomalous + normal
    head = (
        f"{anomalous} of {total} training {unit} of {where} {'contain samples ' if unit == 'windows' else 'are '}"
        "labelled anomalous under "
        f'"{meaning.get("meaning", "")}"'
    )
    if sorted(meaning.get("normal", [])) == [canon("0")]:
        return (
            f"{head}: if 1 means normal set data.normal = 1 ({throughout} {unit} would train); if 0 does, "
            f"set data.normal = 0 to train on the {normal} normal {unit} only, or train on normal recordings "
            "(CSV: move the faulty ones to data.test)"
        )
    return (
        f"{head}: name the normal class(es) with data.normal (set data.normal to the assumed class to "
        f"train on the {normal} normal {unit} only), or train on normal recordings"
    )
