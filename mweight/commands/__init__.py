"""One module per ``mweight`` sub-command; each defines ``add_parser(subparsers, name, help_text)``."""
