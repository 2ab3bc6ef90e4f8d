"""`python tools/studio.py ...` runs `oasis-studio` (oasis_tf/cli/studio.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.studio import run

if __name__ == "__main__":
    sys.exit(run())
