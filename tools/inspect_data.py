"""`python tools/inspect_data.py ...` runs `oasis-inspect-data` (oasis_tf/cli/inspect_data.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.inspect_data import run

if __name__ == "__main__":
    sys.exit(run())
