"""amirun's command line: rehearse executions on the embedded emulator, start and follow runs."""

__version__ = "0.1.0"
