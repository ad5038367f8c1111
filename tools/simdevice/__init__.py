"""The simulated device: the firmware core (tae_app.c, the protocol codec, the pipeline) built for the
host and driven through ctypes (native.py), reachable as a `sim://` serial URL (port.py); the protocol
test configuration and its shared vectors (vectors.py)."""
