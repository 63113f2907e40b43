#!/usr/bin/env python3
"""CogAgent GUI-agent runtime: `run_agent.py --help`. Thin by design; the work lives in `episodes`."""

import sys

from episodes.cli import main

if __name__ == "__main__":
    sys.exit(main())
