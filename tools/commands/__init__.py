"""Subcommands of `python -m tools`: one module each, `add_parser(subparsers)` and `run(args) -> int`."""
