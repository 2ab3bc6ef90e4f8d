"""`python tools/train.py ...` runs `oasis-train` (oasis_tf/cli/train.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.train import run

if __name__ == "__main__":
    sys.exit(run())
