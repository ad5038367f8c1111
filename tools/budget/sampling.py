"""Can a board keep the model's sample rate in sensor mode? The board build refuses a rate it cannot keep.

In sensor mode (-D TAE_BOARD_SENSOR) the main loop reads one sample when it is due (tae_pace.h) and, at
every hop, computes the window and writes its TELEMETRY frame and RESULT to the serial port, all in the
same loop. A slot the loop comes back to a whole period or more too late is skipped (and counted on the
device: TELEMETRY `skipped`). What decides it, estimated before the firmware exists:

1. the sensor's own output rate, from its datasheet and the Arduino library's configuration: above it
   the loop reads the same value twice (a repeated sample is a silent wrong result);
2. the time to read one sample: the bus transfers the sketch makes (firmware/src/board_sensor.cpp) at
   the bus speed the library leaves (I2C 100 kHz: 9 bit times per byte, plus start/stop);
3. the window's computation at the hop, at the clock budgets.toml gives the board's target: on a
   Cortex-M4F the cycles per window the real-time budget estimates from the model's shape
   (tools/budget/cost.py formula_timing: the cost model's instructions x the cycles per instruction of
   the traced default model, the Cortex-M4 TRM's timings; the same figure `tinyae budget estimate` shows);
   on other cores the cost model's Cortex-M4 instructions x a stated proxy for cycles per instruction;
4. the serial port: a UART blocks while a frame drains at the baud rate beyond its hardware FIFO (ESP32
   Arduino core 2.0.x: `Serial` has no TX ring buffer, the FIFO holds 128 bytes); the Nano 33 BLE's USB
   CDC returns once the host has taken the packets (taken here as one 64-byte packet per 1 ms frame, the
   least a full-speed host polls).

Two conditions, both must hold (P = 1 / rate):
- sustained: read + (computation + bytes written per hop / link rate) / hop < P, or the loop falls
  further behind at every hop;
- the longest stall, one read plus the computation and the largest frame written at a hop, < 2 P: a
  stall of 2 P or more skips a slot at every hop (1.5 P or more reads a sample late: a warning).

Every constant below is an estimate with its source; the device's own counts (`tinyae device monitor`,
`record`) are the measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tinyae.errors import UserError

from .config import TIMED_CORES, Target, load_budgets
from .cost import estimate_instructions, formula_timing, kernels_of

I2C_HZ = 100_000  # mbed and ESP32 Wire default; neither IMU library nor board_sensor.cpp raises it
BITS_PER_BYTE_I2C = 9  # 8 data bits + ACK


def _i2c_read_us(register_reads: list[int]) -> float:
    """Microseconds of I2C register reads of n bytes each: START, address+W, register, repeated START,
    address+R, n bytes, STOP (about 3 bit times for the start/stop conditions)."""
    bits = sum(3 + BITS_PER_BYTE_I2C * (3 + n) for n in register_reads)
    return bits * 1e6 / I2C_HZ


@dataclass(frozen=True)
class Sensor:
    name: str
    max_rate_hz: float | None  # None: no rate of its own (computed, or sampled on demand)
    read_us: float  # per sample (all channels)
    source: str


def sensors(channels: int) -> dict[str, Sensor]:
    return {
        "lsm9ds1": Sensor(
            "LSM9DS1 (Nano 33 BLE Rev1, Arduino_LSM9DS1 1.1.1)",
            119.0,
            _i2c_read_us([1, 6, 1, 6]),
            "begin() writes CTRL_REG1_G = 0x78 and CTRL_REG6_XL = 0x70: 119 Hz output rate (LSM9DS1 datasheet, "
            "ODR table); a sample is accelerationAvailable + readAcceleration + gyroscopeAvailable + "
            "readGyroscope: 1 + 6 + 1 + 6 register bytes over I2C at 100 kHz",
        ),
        "bmi270": Sensor(
            "BMI270 (Nano 33 BLE Rev2, Arduino_BMI270_BMM150 1.2.1)",
            100.0,
            _i2c_read_us([1, 6, 1, 6]),
            "the library configures acc and gyr at BMI2_ACC_ODR_100HZ / BMI2_GYR_ODR_100HZ; a sample is "
            "the same four reads as Rev1's (status and 6 data bytes per sensor) over I2C at 100 kHz",
        ),
        "mpu6050": Sensor(
            "MPU6050 on I2C (ESP32, -D TAE_ESP32_MPU6050)",
            1000.0,
            _i2c_read_us([14]),
            "accelerometer output rate 1 kHz (MPU-6000/6050 datasheet: SMPLRT_DIV 0, DLPF off); a sample is "
            "one 14-byte burst from ACCEL_XOUT_H over I2C at 100 kHz",
        ),
        "esp32_adc": Sensor(
            "ESP32 analog inputs (analogRead)",
            None,
            50.0 * channels,
            "about 50 us per analogRead on the Arduino ESP32 core 2.0.x (ADC1 one-shot read, an estimate), "
            "one per channel",
        ),
        "synthetic": Sensor(
            "the synthetic machine (tae_synth, SENSOR=synth)",
            None,
            60.0,
            "about 3,000 instructions per sample (sinf, expf, a hash), an estimate",
        ),
    }


@dataclass(frozen=True)
class Board:
    # cycles per Cortex-M4 instruction of the cost model on a core whose cycles are not estimated
    # (budgets.toml core not in TIMED_CORES); None: the real-time budget's estimate (cost.formula_timing)
    proxy_cycles_per_instruction: float | None
    link: str
    link_bytes_per_s: float
    link_fifo: int  # bytes a write hands over without waiting
    source: str


BOARDS = {
    "nano33ble": Board(
        None,
        "USB CDC",
        64_000.0,
        0,
        "nRF52840 Cortex-M4F at budgets.toml's clock_hz; the window's cycles as the real-time budget "
        "estimates them from the model's shape (the Cortex-M4 TRM's timings, an estimate); USB full speed, one "
        "64-byte bulk packet per 1 ms frame",
    ),
    "esp32dev": Board(
        1.5,
        "UART",
        0.0,  # from the baud rate
        128,
        "ESP32 Xtensa LX6 at budgets.toml's clock_hz; the Cortex-M4 instruction counts taken with 1.5 cycles "
        "each (no Xtensa model here, a proxy); UART at TAE_SERIAL_BAUD (10 bits per byte), 128-byte hardware "
        "FIFO, no TX ring buffer",
    ),
}


@dataclass
class Sampling:
    env: str
    rate_hz: float
    sensor: Sensor
    board: Board
    terms: dict[str, float] = field(default_factory=dict)  # microseconds
    problems: list[str] = field(default_factory=list)  # the build refuses
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _flag(flags: str, name: str) -> bool:
    return re.search(rf"-D\s*{name}\b", flags) is not None


def _flag_value(flags: str, name: str) -> str | None:
    m = re.search(rf"-D\s*{name}=(\S+)", flags)
    return m.group(1) if m else None


def sensor_of(env: str, flags: str) -> str:
    if _flag(flags, "TAE_BOARD_SYNTH"):
        return "synthetic"
    if env.startswith("nano33ble"):
        return "bmi270" if _flag(flags, "TAE_NANO33BLE_REV2") else "lsm9ds1"
    if env.startswith("esp32"):
        return "mpu6050" if _flag(flags, "TAE_ESP32_MPU6050") else "esp32_adc"
    raise UserError(f"no sensor is known for env {env!r}; tools/budget/sampling.py lists the boards")


def _budget_target(board_name: str) -> Target:
    """budgets.toml's target for a PlatformIO board id (its pio_boards), with the core's clock."""
    budgets = load_budgets()
    target = next((t for t in budgets.targets.values() if board_name in t.pio_boards), None)
    if target is None or not target.clock_hz:
        raise UserError(
            f"{budgets.path} gives no target with clock_hz for the {board_name} board; add clock_hz (the CPU "
            "clock in Hz) to the target that lists it in pio_boards"
        )
    return target


def _compute_us(manifest: dict[str, Any], engine: str, library: str, board: Board, target: Target) -> float:
    """Microseconds of one window's computation at the hop on `target`'s core and clock."""
    if target.core in TIMED_CORES:
        timing = formula_timing(manifest, engine, library)
        if timing is None:
            raise UserError(
                "the manifest lacks the model's shape (input, window); rebuild it with `tinyae model`"
            )
        cycles = float(timing["cycles"]["window"]["nominal"])
    elif board.proxy_cycles_per_instruction is not None:
        instructions, _ = estimate_instructions(manifest, kernels_of(engine, library))
        cycles = instructions * board.proxy_cycles_per_instruction
    else:
        raise UserError(
            f"budgets.toml's {target.name} has core {target.core!r}, whose cycles are not estimated; give its "
            "board a proxy in tools/budget/sampling.py"
        )
    return cycles / target.clock_hz * 1e6


def _wire_bytes(body: int) -> int:
    frame = 10 + body  # header, body, CRC-32
    return frame + frame // 254 + 2  # COBS and the delimiter


def estimate(manifest: dict[str, Any], env: str, flags: str = "") -> Sampling:
    """The sensor-mode timing of `env` (a platformio.ini env) for this manifest and build flags."""
    from tinyae.train.boards import targets

    board_name = next((b for b in BOARDS if env.startswith(b)), None)
    if board_name is None:
        raise UserError(
            f"no sampling figures are known for env {env!r} (boards: {', '.join(BOARDS)}); add the board to "
            "tools/budget/sampling.py"
        )
    board = BOARDS[board_name]
    w = manifest["window"]
    rate, hop, channels = float(w["sample_rate_hz"]), int(w["hop"]), int(w["channels"])
    sensor = sensors(channels)[sensor_of(env, flags)]
    s = Sampling(env, rate, sensor, board)
    if not rate > 0:
        s.problems.append("the model has no sample rate (data.sample_rate_hz), so sensor mode cannot pace it")
        return s
    period_us = 1e6 / rate
    target = targets().get(env)
    engine = target.engine if target is not None else "compiled"
    library = target.library.kernels if target is not None and target.library is not None else ""
    compute_us = _compute_us(manifest, engine, library, board, _budget_target(board_name))
    if board.link == "UART":
        baud = int(_flag_value(flags, "TAE_SERIAL_BAUD") or 115200)
        link_rate = baud / 10.0
    else:
        link_rate = board.link_bytes_per_s
    # TELEMETRY frames go out every 32 samples and at every window's end, then the RESULT
    result = _wire_bytes(17)
    full, rest = divmod(hop, 32)
    per_hop_bytes = full * _wire_bytes(16 + 4 * channels * 32) + result
    per_hop_bytes += _wire_bytes(16 + 4 * channels * rest) if rest else 0
    frame = _wire_bytes(16 + 4 * channels * min(hop, 32))  # the frame written at the hop (at most)
    stall_write_us = max(0.0, frame + result - board.link_fifo) / link_rate * 1e6
    s.terms = {
        "sample period": period_us,
        "sensor read per sample": sensor.read_us,
        "window computation at the hop": compute_us,
        "serial write at the hop": stall_write_us,
        "serial bytes per hop": float(per_hop_bytes),
    }
    if sensor.max_rate_hz is not None and rate > sensor.max_rate_hz:
        s.problems.append(
            f"{sensor.name} gives at most {sensor.max_rate_hz:g} samples/s, below the model's {rate:g} Hz: "
            "the board would read the same value again"
        )
    sustained = sensor.read_us + (compute_us + per_hop_bytes / link_rate * 1e6) / hop
    s.terms["loop time per sample (sustained)"] = sustained
    if sustained >= period_us:
        s.problems.append(
            f"each sample costs the loop {sustained:,.0f} us on average (read {sensor.read_us:,.0f} us, the "
            f"window's computation and {per_hop_bytes} serial bytes ({board.link}) spread over the hop of {hop}) "
            f"but a sample is due every {period_us:,.0f} us"
        )
    stall = sensor.read_us + compute_us + stall_write_us
    s.terms["longest stall (read + computation + write)"] = stall
    if stall >= 2 * period_us:
        s.problems.append(
            f"at every hop the loop is away {stall:,.0f} us (read, {compute_us:,.0f} us of computation, "
            f"{stall_write_us:,.0f} us writing to the {board.link}), two sample periods or more: a slot is "
            "skipped at every hop"
        )
    elif stall >= 1.5 * period_us:
        s.warnings.append(
            f"at every hop the loop is away {stall:,.0f} us, 1.5 sample periods or more: a sample is read late "
            "at every hop (the device counts them)"
        )
    return s


def refusal(s: Sampling) -> str:
    """One sentence: why the board cannot keep the rate, and what to change."""
    return (
        f"{s.env} cannot keep the model's {s.rate_hz:g} Hz in sensor mode: {'; '.join(s.problems)}; lower "
        "data.sample_rate_hz, use a smaller model or the compiled engine, or raise the serial speed "
        '(EXTRA_FLAGS="-D TAE_SERIAL_BAUD=921600" on a UART) — estimated, see tools/budget/sampling.py'
    )


def check_build(manifest: dict[str, Any], env: str, flags: str) -> Sampling | None:
    """For a board build: None when it has no sensor mode; UserError when it cannot keep the rate."""
    if not _flag(flags, "TAE_BOARD_SENSOR"):
        return None
    s = estimate(manifest, env, flags)
    if not s.ok:
        raise UserError(refusal(s))
    return s
