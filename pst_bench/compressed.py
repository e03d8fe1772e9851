"""`python -m pst_bench.compressed expand FOLDER OUT`: the entry point of :mod:`pst_bench.run.compressed`."""

import sys

from .run.compressed import main

if __name__ == "__main__":
    sys.exit(main())
