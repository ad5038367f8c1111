"""Which weight quantization each target can compute (train/boards.py), read from platformio.ini."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyae.errors import UserError
from tinyae.train.boards import (
    EMULATOR_ENV,
    TFLM_LIBRARIES,
    check_model_runs_on,
    choose_weights,
    targets,
)


def test_every_env_of_platformio_ini_is_known_with_its_engine_and_library() -> None:
    t = targets()
    assert set(t) == {"nano33ble", "nano33ble_compiled", "esp32dev", "esp32dev_compiled", EMULATOR_ENV}
    assert t["nano33ble"].library is TFLM_LIBRARIES["spaziochirale/Chirale_TensorFLowLite@2.0.0"]
    assert t["esp32dev"].library is TFLM_LIBRARIES["tanakamasayuki/TensorFlowLite_ESP32@1.0.0"]
    assert all(t[n].engine == "compiled" and t[n].library is None for n in t if n.endswith("_compiled"))
    assert t[EMULATOR_ENV].per_channel_ok


def test_auto_is_per_tensor_while_a_target_library_lacks_per_channel() -> None:
    choice = choose_weights("auto", [])
    assert not choice.per_channel and choice.granularity == "per_tensor"
    assert "nano33ble (Chirale_TensorFLowLite 2.0.0)" in choice.reason
    assert "esp32dev (TensorFlowLite_ESP32 1.0.0)" in choice.reason
    assert set(choice.runs_on) == set(targets())


def test_auto_is_per_channel_when_every_target_supports_it() -> None:
    choice = choose_weights("auto", ["nano33ble_compiled", EMULATOR_ENV])
    assert choice.per_channel
    assert choice.runs_on == sorted(["esp32dev_compiled", EMULATOR_ENV, "nano33ble_compiled"])
    assert choice.to_manifest()["weights"] == "per_channel"


def test_forcing_per_channel_onto_a_library_without_it_is_refused() -> None:
    with pytest.raises(UserError) as err:
        choose_weights("per_channel", ["esp32dev", EMULATOR_ENV])
    assert str(err.value) == (
        "quantize.weights = per_channel cannot run on esp32dev (TFLM: TensorFlowLite_ESP32 1.0.0): that "
        "library computes per-channel FULLY_CONNECTED weights with the first channel's scale (wrong "
        'results); use quantize.weights = "auto" or "per_tensor", or leave esp32dev out of quantize.targets'
    )


def test_an_unknown_target_is_named() -> None:
    with pytest.raises(UserError, match=r"quantize\.targets names uno, which is not a target; known: "):
        choose_weights("auto", ["uno"])


def test_check_model_runs_on() -> None:
    check_model_runs_on("per_channel", "nano33ble_compiled")
    check_model_runs_on("per_tensor", "nano33ble")
    with pytest.raises(UserError, match=r"Chirale_TensorFLowLite 2\.0\.0 \(env nano33ble\) computes"):
        check_model_runs_on("per_channel", "nano33ble")


def test_an_env_with_an_undescribed_tflm_library_is_refused(tmp_path: Path) -> None:
    ini = tmp_path / "platformio.ini"
    ini.write_text(
        "[env:nano]\nbuild_flags = -D TAE_ENGINE_TFLM\nlib_deps =\n    someone/TensorFlowLite_X@9.9.9\n"
    )
    with pytest.raises(UserError, match=r"pins TFLM library someone/TensorFlowLite_X@9\.9\.9, which"):
        targets(ini)
