"""`python tools/trace_cost.py ...` runs `python -m oasis_tf.cli.trace_cost` (oasis_tf/cli/trace_cost.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.trace_cost import run

if __name__ == "__main__":
    sys.exit(run())
