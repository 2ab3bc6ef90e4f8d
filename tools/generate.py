"""`python tools/generate.py ...` runs `oasis-generate` (oasis_tf/cli/generate.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.generate import run

if __name__ == "__main__":
    sys.exit(run())
