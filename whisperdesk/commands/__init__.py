"""One module per CLI subcommand; each offers add_parser(subparsers) and run(args) -> int."""
