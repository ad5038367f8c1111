"""On-site calibration: the manifest section and constants (spec), the stored record (record), the
core's C through the host build (native) and the host mirror of a whole calibration (mirror)."""

from tinyae.train.calibration.spec import CalibSpec, build, record_bytes

__all__ = ["CalibSpec", "build", "record_bytes"]
