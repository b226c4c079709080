"""The HTML report of a predictions table: one self-contained page (no TensorFlow)."""
from .html import build_report

__all__ = ["build_report"]
