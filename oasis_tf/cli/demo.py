"""oasis-demo: a small OASIS trained on the built-in synthetic data set, start to end.

    oasis-demo                          # 1500 steps, about 10 minutes on 2 CPU cores
    oasis-demo --steps 300 --out_dir runs
    oasis-demo --precision float32      # the preset's precision on every CPU

(From a checkout, `make demo` runs it in the project's virtualenv; DEMO_STEPS and
DEMO_PRECISION set --steps and --precision there.)

Writes the synthetic data set (no download; kept in $OASIS_TF_DATA/synthetic or
~/.cache/oasis_tf/synthetic), trains in a new run folder <out_dir>/demo-NNNN with
sample grids and loss curves, evaluates the EMA generator (mIoU with a small
segmenter, MS-SSIM diversity), exports it for TF Serving and TFLite, and prints where
everything is. See ``oasis_tf.demo.run_demo`` and docs/demo.md.
"""

import os
import sys

from absl import flags

from oasis_tf.cli import common
from oasis_tf.demo import DEFAULT_STEPS, run_demo

FLAGS = common.new_flags()
flags.DEFINE_integer("steps", int(os.environ.get("DEMO_STEPS") or DEFAULT_STEPS),
                     f"Training steps (default {DEFAULT_STEPS}, or $DEMO_STEPS).",
                     lower_bound=1, flag_values=FLAGS)
flags.DEFINE_string("out_dir", "runs", "Where the run folder demo-NNNN goes.",
                    flag_values=FLAGS)
common.define_data_root(FLAGS, "Synthetic data folder (default $OASIS_TF_DATA/synthetic or "
                        "~/.cache/oasis_tf/synthetic).")
common.define_config(FLAGS, "Preset or YAML path (default synthetic).")
common.define_precision(FLAGS, os.environ.get("DEMO_PRECISION") or "auto",
                        "Training precision (default auto, or $DEMO_PRECISION: "
                        "mixed_bfloat16 where the CPU computes bfloat16 natively)",
                        extra=("auto",))
common.define_overrides(FLAGS)


def main(argv):
    common.reject_arguments(argv)
    run_demo(out_dir=FLAGS.out_dir, steps=FLAGS.steps, data_root=FLAGS.data_root,
             config=FLAGS.config or "synthetic", overrides=FLAGS.override,
             precision=FLAGS.precision)


def run(argv=None):
    """The console script ``oasis-demo``."""
    return common.run_command("oasis-demo", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
