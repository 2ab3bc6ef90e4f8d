"""`python tools/demo.py ...` runs `oasis-demo` (oasis_tf/cli/demo.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.demo import run

if __name__ == "__main__":
    sys.exit(run())
