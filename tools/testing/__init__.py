"""Testing-only code: harnesses and doubles used by tests and `make fuzz`, never by the `tinyae` command
(the stand-in reference of the simulated device's stub engine, the libFuzzer driver)."""
