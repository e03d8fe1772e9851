"""`python -m pst_bench.bench` (`make bench`): the entry point of :mod:`pst_bench.perf.bench`."""

import sys

from .perf.bench import main

if __name__ == "__main__":
    sys.exit(main())
