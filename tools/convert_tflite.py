"""`python tools/convert_tflite.py ...` runs `oasis-tflite` (oasis_tf/cli/tflite.py);
`--help` shows its examples and flags."""

import sys

from oasis_tf.cli.tflite import run

if __name__ == "__main__":
    sys.exit(run())
