"""The emulated board: the firmware image on QEMU mps2-an386 (Cortex-M4F), its UART on a loopback socket
(qemu.py). CI's device."""
