"""A fault-injecting TCP proxy on loopback between the host tool and the emulated board (proxy.py)."""
