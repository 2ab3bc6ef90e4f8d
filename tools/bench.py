"""`python tools/bench.py ...` runs `python -m oasis_tf.cli.bench` (oasis_tf/cli/bench.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.bench import run

if __name__ == "__main__":
    sys.exit(run())
