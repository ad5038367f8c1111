"""tinyae device-side tools: serial protocol, host CLI, emulator, budget gate, benchmarks."""
