"""Load and soak of declarund: ``.venv/bin/python benchmarks/soak.py [--minutes 10] ...``.

The work is ``tests/hostile/soak.py`` (shared with the one-minute test); see its docstring
for the mix, what is recorded and the exit status. Run as root from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile.soak import main

if __name__ == "__main__":
    sys.exit(main())
