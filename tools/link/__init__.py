"""The serial link to a device: the wire protocol codec (protocol.py, docs/protocol.md), the Device
session over any pyserial URL (device.py), on-site calibration driven over the link (calibration.py)."""
