"""`python -m pst_bench.figures` (`make figures`): the entry point of :mod:`pst_bench.report.figures`."""

import sys

from .report.figures import main

if __name__ == "__main__":
    sys.exit(main())
