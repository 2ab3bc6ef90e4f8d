"""`python tools/export.py ...` runs `oasis-export` (oasis_tf/cli/export.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.export import run

if __name__ == "__main__":
    sys.exit(run())
