"""`python tools/evaluate.py ...` runs `oasis-evaluate` (oasis_tf/cli/evaluate.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.evaluate import run

if __name__ == "__main__":
    sys.exit(run())
