"""``python -m aiops_lab`` runs the ``aiops-lab`` command line."""

from __future__ import annotations

import sys

from aiops_lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
