"""The evidence protocol (results/README.md, "Protocol") as one resumable command.

    python -m pst_bench.protocol --spec cpu --dry-run     # where it stands: decisions, waiting stages, runs
    python -m pst_bench.protocol --spec cpu               # run what is pending, in priority order
    python -m pst_bench.protocol --spec gpu --jobs 8      # the same protocol on a GPU, 8 runs at once

``spec`` types a protocol file (conf/protocol/), ``plan`` turns it and the finished records into runs
stage by stage, ``execute`` runs them as ``pst-bench`` processes.
"""
