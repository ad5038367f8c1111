"""The host side of a tinyae device (installed as `tinyae.tools`), one room per job:

- link/       the serial link: the wire protocol codec, the Device session, calibration over the link
- commands/   the `tinyae device ...`, `ports` and `emulate` commands built on the link
- emulator/   the emulated board: QEMU mps2-an386 running the firmware image, its UART on a socket
- simdevice/  the simulated device: the firmware core built for the host (ctypes), `sim://` ports
- faultproxy/ a fault-injecting TCP proxy between the tool and the emulated board (robustness tests)
- boards/     PlatformIO for real boards (`make build/flash`), with tinyae's checks around it
- budget/     the flash/SRAM gate and the cost model
- bench/      `tinyae bench`: every measured figure of README and bench/RESULTS.md
- testing/    test doubles and harnesses only tests and `make fuzz` use (never the product CLI)
"""
