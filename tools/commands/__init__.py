"""The device-side commands of `tinyae` (tinyae/cli.py mounts them): one module each,
`add_parser(subparsers)` and `run(args) -> int`."""
