"""`python tools/serving_client.py ...` runs `oasis-serving-client` (oasis_tf/cli/serving_client.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.serving_client import run

if __name__ == "__main__":
    sys.exit(run())
