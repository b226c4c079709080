"""The ``imagesentiment`` command line: a module per group of commands, each command beside its options."""
from .entry import build_parser, main

__all__ = ["build_parser", "main"]
