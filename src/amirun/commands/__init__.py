"""The CLI's command groups, one module each.

Every module exposes `register(subparsers)`, which adds its parser(s) and sets
`func` to the handler; `amirun.cli` only assembles them.
"""
