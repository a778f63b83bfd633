"""Helpers shared by the Python scripts under scripts/ (fixtures, bench, oracles, data).

A script in scripts/<group>/ imports it with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
    from imd_scripts import ROOT  # noqa: E402

Standard library only at import time, so every script can use it whatever it needs itself.
"""

from pathlib import Path

# The repository root (this file is scripts/lib/imd_scripts.py).
ROOT = Path(__file__).resolve().parents[2]
