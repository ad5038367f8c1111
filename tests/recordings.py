"""A user's own recordings, as README's "Your own recordings, end to end" lays them out: small CSV files of
a fan motor on an IMU (`timestamp_ms,sample,accX,accY,accZ`, 100 Hz), one folder per condition, and the
config that names them. The held-out normal run turns a little faster than the training runs, so the
report has a weakest recording to name; the bearing fault is subtle, so it has a weakest fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RATE_HZ = 100.0


def imu(
    seconds: float, seed: int, *, speed_hz: float = 7.0, unbalance: float = 0.0, bearing: float = 0.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    phase = 2 * np.pi * speed_hz * t
    x = np.c_[np.sin(phase), 0.8 * np.cos(phase), 0.3 * np.sin(2 * phase) + 1.0]
    x[:, 0] *= 1.0 + unbalance
    x[:, 1] += bearing * np.sin(2 * np.pi * 31 * t)
    return (x + 0.08 * rng.normal(size=x.shape)).astype(np.float32)


def write_run(path: Path, x: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["timestamp_ms,sample,accX,accY,accZ"]
    lines += [f"{i * 10},{i},{r[0]:.5f},{r[1]:.5f},{r[2]:.5f}" for i, r in enumerate(x)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_layout(root: Path, seconds: float = 30.0, epochs: int = 30) -> Path:
    """recordings/{normal,test-normal,unbalanced,bearing}/*.csv and the config naming them; the config path."""
    r = root / "recordings"
    for k in range(1, 4):
        write_run(r / "normal" / f"run{k}.csv", imu(seconds, k))
    write_run(r / "test-normal" / "run4.csv", imu(seconds / 2, 4, speed_hz=7.05))
    write_run(r / "unbalanced" / "run5.csv", imu(seconds / 2, 5, unbalance=1.0))
    write_run(r / "bearing" / "run6.csv", imu(seconds / 2, 6, bearing=0.15))
    cfg = root / "my-machine.toml"
    cfg.write_text(
        f"""[data]
source = "csv"
train = ["{r}/normal/*.csv"]
test = ["{r}/test-normal/*.csv", "{r}/unbalanced/*.csv", "{r}/bearing/*.csv"]
normal = "normal"

[data.file_labels]
"{r}/normal/*.csv" = "normal"
"{r}/test-normal/*.csv" = "normal"
"{r}/unbalanced/*.csv" = "unbalanced"
"{r}/bearing/*.csv" = "bearing"

[normalization]
method = "robust"

[train]
epochs = {epochs}
"""
    )
    return cfg
