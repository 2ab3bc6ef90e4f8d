"""`python tools/bench_data.py ...` runs `python -m oasis_tf.cli.bench_data` (oasis_tf/cli/bench_data.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.bench_data import run

if __name__ == "__main__":
    sys.exit(run())
