"""``python -m benchmarks``: the end-to-end benchmark (see benchmarks/README.md)."""

import sys

from benchmarks.harness import main

sys.exit(main())
