"""``python -m imagesentiment.cli``: the ``imagesentiment`` command."""
import sys

from .entry import main

sys.exit(main())
