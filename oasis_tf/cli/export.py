r"""oasis-export: a generator (and optionally its discriminator) as a TF Serving SavedModel.

    # a training run folder (oasis-train creates runs/<dataset>-NNNN): its
    # generator.keras and discriminator.keras, checked against its manifest.json
    oasis-export --generator runs/synthetic-0001 --discriminator runs/synthetic-0001 \
        --export_dir exports --version 1
    # a converted checkpoint (oasis-convert), or an official one
    oasis-export --generator ade20k_G.keras --export_dir exports
    oasis-export --generator best_EMA.pth --image_size 256,512 --discriminator best_D.pth \
        --export_dir exports

(From a checkout, `python tools/export.py` takes the same flags.)

Writes ``<export_dir>/<model_name>/<version>/`` (signatures ``serving_default``,
``generate_with_noise``, ``generate_png`` and, with a discriminator, ``segment``; see
``oasis_tf.export.saved_model``) and prints how to serve it.
"""

import json
import os
import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags(version=False)  # --version: the export's version folder
common.define_generator_source(FLAGS, "generator")
common.define_official_checkpoint(FLAGS)
flags.DEFINE_string("discriminator", None, "Optional discriminator: run folder, checkpoint "
                    "folder, .keras, .pth or .npz; adds the `segment` signature.",
                    flag_values=FLAGS)
flags.DEFINE_string("export_dir", None, "Base folder (TF Serving's model base path parent).",
                    flag_values=FLAGS)
common.define_model_name(FLAGS, "Model name: the folder under --export_dir (TF Serving's "
                         "model name).")
flags.DEFINE_integer("version", 1, "Version folder (positive integer).", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("class_names", None, "Optional file with one class name per line "
                    "(default: the generator's).", flag_values=FLAGS)
flags.DEFINE_string("palette", None, "Optional JSON file: [[r, g, b], ...] per class "
                    "(default: the generator's).", flag_values=FLAGS)
common.define_overwrite(FLAGS, "Replace an existing version folder.")
flags.mark_flag_as_required("export_dir", flag_values=FLAGS)


def main(argv):
    common.reject_arguments(argv)
    from oasis_tf.export import export_saved_model
    from oasis_tf.inference import load_discriminator

    generator, _ = common.load_generator(FLAGS, "generator")
    discriminator = (load_discriminator(FLAGS.discriminator)[0] if FLAGS.discriminator
                     else None)
    class_names = palette = None
    if FLAGS.class_names:
        with open(FLAGS.class_names, encoding="utf-8") as f:
            class_names = [line.strip() for line in f if line.strip()]
    if FLAGS.palette:
        with open(FLAGS.palette, encoding="utf-8") as f:
            palette = json.load(f)
    version_dir = export_saved_model(
        generator, FLAGS.export_dir, model_name=FLAGS.model_name, version=FLAGS.version,
        discriminator=discriminator, palette=palette, class_names=class_names,
        overwrite=FLAGS.overwrite)
    base = os.path.abspath(os.path.join(FLAGS.export_dir, FLAGS.model_name))
    name = FLAGS.model_name
    print(f"exported {FLAGS.generator} -> {version_dir}")
    print(f"signatures: serving_default, generate_with_noise, generate_png"
          f"{', segment' if discriminator is not None else ''}")
    print("serve it with:")
    print(f"  docker run --rm -p 8501:8501 -p 8500:8500 -v {base}:/models/{name} "
          f"-e MODEL_NAME={name} tensorflow/serving")
    print(f"  curl -d '{{\"instances\": [{{\"label_map\": [[...]], \"seed\": 0}}]}}' "
          f"http://localhost:8501/v1/models/{name}:predict")


def run(argv=None):
    """The console script ``oasis-export``."""
    return common.run_command("oasis-export", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
