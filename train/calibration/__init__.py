"""On-site calibration: the manifest section and constants (spec), the stored record (record), the
core's C through the host build (native) and the host mirror of a whole calibration (mirror)."""

from tinyae.train.calibration.spec import CalibSpec, build, record_bytes

__all__ = ["CalibSpec", "build", "defines", "record_bytes"]


def defines(spec: CalibSpec) -> str:
    """The calibration #define block alone (calibration_block.j2), for test headers assembled by hand."""
    from tinyae.train.export import render

    return render("calibration_block.j2", cal=spec)
