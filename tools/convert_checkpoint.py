"""`python tools/convert_checkpoint.py ...` runs `oasis-convert` (oasis_tf/cli/convert.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.convert import run

if __name__ == "__main__":
    sys.exit(run())
