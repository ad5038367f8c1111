"""What a label means: which values are normal, said by the user or inferred and then printed.

- `data.normal` (a value or a list) names the normal values; every other value is an anomaly. Each
  named value must occur somewhere in the data (a typo must not make every window anomalous).
- Without it: labels that are all 0/1 read as 0 = normal, 1 = anomaly, and a class called "normal"
  is the normal class; the meaning is printed and written to the manifest as assumed, so a 1 = normal
  file (TensorFlow's ECG tutorial data) is visible at once. Any other set of classes is refused.
- Every source (CSV, UCR/UEA, Edge Impulse, the named data sets) hands its meaning to the split
  (tinyae.train.data.splits.prepare_splits), which refuses training data that are mostly anomalous
  under an assumed reading (`training_labels_refusal`): one check for every source.
- A file read with a model's meaning (`tinyae device stream/verify/calibrate --csv`: the manifest's
  `data.label`) may hold only the classes the model knows, its normal and its anomalous ones
  (`LabelMeaning.refuse_unknown`): a 1/-1 or True/False column read with a 0/1 model would otherwise be
  all anomalous. `--normal` states the file's own meaning instead.
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


def _value(c: str) -> str:
    """A canonical value as the user writes it ("0.0" -> "0")."""
    try:
        return f"{float(c):g}"
    except ValueError:
        return printable(c)


@dataclass(frozen=True)
class LabelMeaning:
    normal: frozenset[str]  # canonical values that mean normal
    said: bool  # True when data.normal gave them, False when inferred
    text: str  # one line for the summary and the manifest
    # canonical values that mean anomalous: the classes the data had besides the normal ones (1 for a 0/1
    # reading); None when unknown (data without another class, a manifest written before they were recorded)
    anomalous: frozenset[str] | None = None

    def is_normal(self, value: str) -> bool:
        return canon(value) in self.normal

    def to_dict(self) -> dict:
        out = {"normal": sorted(self.normal), "said": self.said, "meaning": self.text}
        if self.anomalous is not None:
            out["anomalous"] = sorted(self.anomalous)
        return out

    @classmethod
    def from_dict(cls, label: dict) -> LabelMeaning:
        """The meaning a manifest's `data.label` records (LabelMeaning.to_dict()); a manifest without
        `anomalous` knows its anomalous class only for a 0/1 reading (its text says "0 = normal, 1 = ...")."""
        anomalous = label.get("anomalous")
        normal = frozenset(label["normal"])
        text = label.get("meaning", "")
        if anomalous is None and normal == {canon("0")} and text.startswith("0 = normal, 1 = "):
            anomalous = [canon("1")]
        return cls(normal, bool(label.get("said")), text, None if anomalous is None else frozenset(anomalous))

    def refuse_unknown(self, values: Iterable[str], where: str) -> None:
        """Refuse label values that are neither a normal nor an anomalous class of this meaning (a file read
        with a model's meaning): each would silently read as anomalous."""
        if self.anomalous is None:
            return
        known = self.normal | self.anomalous
        unknown = sorted({v.strip() for v in values if canon(v) not in known})
        if not unknown:
            return
        classes = ", ".join(
            [f"{_value(c)} = normal" for c in sorted(self.normal)]
            + [f"{_value(c)} = anomalous" for c in sorted(self.anomalous)]
        )
        raise UserError(
            f"{printable(where, None)} has label value{'s' if len(unknown) > 1 else ''} {_show(unknown)} that the "
            f"model's classes ({classes}) do not include, so every such sample would read as anomalous; "
            "name the file's normal value(s) with --normal (every other value then means anomalous), or pass "
            "--label none to read it without labels"
        )


def _anomalous(normal: set[str], others: Sequence[str]) -> frozenset[str] | None:
    """The anomalous classes of a meaning: the other classes the data had; when they had none, 1 where 0 is
    the normal class (the 0/1 convention), else unknown (every other value then reads as anomalous)."""
    if others:
        return frozenset(canon(p) for p in others)
    return frozenset({canon("1")}) if normal == {canon("0")} else None


def label_meaning(
    values: Iterable[str], normal: Sequence[str] | str | None, where: str, setting: str = "data.normal"
) -> LabelMeaning:
    """setting: where `normal` came from, for the messages (data.normal, or --normal of a device command)."""
    present = sorted({v.strip() for v in values})
    if isinstance(normal, str):
        normal = [normal]
    if normal:
        wanted = [str(n).strip() for n in normal]
        have = {canon(p) for p in present}
        missing = [w for w in wanted if canon(w) not in have]
        if missing:
            raise UserError(
                f"normal class {printable(repr(missing[0]))} ({setting}) does not occur in {printable(where, None)}; "
                f"its classes are {_show(present)}: fix {setting}"
            )
        keep = {canon(w) for w in wanted}
        others = [p for p in present if canon(p) not in keep]
        text = (
            f"{_show(wanted, len(wanted))} = normal; "
            f"{_show(others) or 'nothing else occurs'} = anomaly ({setting})"
        )
        return LabelMeaning(frozenset(keep), True, text, _anomalous(keep, others))
    if present and {canon(p) for p in present} <= {canon("0"), canon("1")}:
        return LabelMeaning(
            frozenset({canon("0")}),
            False,
            "0 = normal, 1 = anomaly (assumed; set data.normal = 1 if 1 means normal)",
            frozenset({canon("1")}),
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
            _anomalous({canon(named[0])}, others),
        )
    how = "pass normal=[...] (data.normal)" if setting == "data.normal" else f"pass {setting}"
    raise UserError(
        f"{printable(where, None)} has classes {_show(present)} (not 0/1); {how} naming the normal class(es)"
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
