"""Real boards through PlatformIO (pio.py): `make build/flash/serial-monitor` with tinyae's checks
(a model the env's TFLM cannot run, no network) in one sentence."""
