"""get_logger, as OpenAlgo's utils.logging offers it: a standard logger, on stderr.

The level is LOG_LEVEL (default WARNING, so tests' output stays short).
"""
import logging
import os
import sys

_configured = False


def get_logger(name: str) -> logging.Logger:
    global _configured
    if not _configured:
        _configured = True
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("openalgo %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(os.getenv("LOG_LEVEL", "WARNING").upper())
    return logging.getLogger(name)
