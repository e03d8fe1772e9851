"""`python -m pst_bench.tables` (`make tables`): the entry point of :mod:`pst_bench.report.tables`."""

import sys

from .report.tables import main

if __name__ == "__main__":
    sys.exit(main())
