"""`python -m pst_bench.bench_infer` (`make bench-infer`): the entry point of :mod:`pst_bench.perf.infer`."""

import sys

from .perf.infer import main

if __name__ == "__main__":
    sys.exit(main())
