"""Export a generator (and optionally its discriminator) as a TF Serving SavedModel.

    # a training run folder (tools/train.py creates runs/<dataset>-NNNN): its
    # generator.keras and discriminator.keras, checked against its manifest.json
    python tools/export.py --generator runs/synthetic-0001 \
        --discriminator runs/synthetic-0001 --export_dir exports --version 1
    # a converted checkpoint (tools/convert_checkpoint.py), or an official one
    python tools/export.py --generator ade20k_G.keras --export_dir exports
    python tools/export.py --generator best_EMA.pth --image_size 256,512 \
        --discriminator best_D.pth --export_dir exports

Writes ``<export_dir>/<model_name>/<version>/`` (signatures ``serving_default``,
``generate_with_noise``, ``generate_png`` and, with a discriminator, ``segment``;
see ``oasis_tf.export.saved_model``) and prints how to serve it.
"""

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("generator", None, "Generator: .keras file, run folder, or an official state dict "
                    "(.pth/.pt or .npz; needs --image_size).")
flags.DEFINE_string("discriminator", None, "Optional discriminator: run folder, checkpoint "
                    "folder, .keras, .pth or .npz; adds the `segment` signature.")
flags.DEFINE_string("export_dir", None, "Base folder (TF Serving's model base path parent).")
flags.DEFINE_string("model_name", "oasis", "Model name: folder under --export_dir.")
flags.DEFINE_integer("version", 1, "Version folder (positive integer).")
flags.DEFINE_list("image_size", None, "H,W of an official generator checkpoint.")
flags.DEFINE_integer("z_dim", None, "Noise channels of an official checkpoint (default 64).")
flags.DEFINE_integer("num_classes", None, "Classes (semantic_nc) of an official checkpoint.")
flags.DEFINE_string("class_names", None, "Optional file with one class name per line.")
flags.DEFINE_string("palette", None, "Optional JSON file: [[r, g, b], ...] per class.")
flags.DEFINE_bool("overwrite", False, "Replace an existing version folder.")
flags.mark_flags_as_required(["generator", "export_dir"])

def _load(path, kind):
    from oasis_tf import loading

    if kind == "discriminator":
        return loading.load_discriminator(path)[0]
    size = None
    if FLAGS.image_size:
        size = tuple(int(s) for s in FLAGS.image_size)
        size = size * 2 if len(size) == 1 else size
    elif path.endswith(loading.OFFICIAL_SUFFIXES):
        raise app.UsageError("--image_size H,W is required for an official generator")
    return loading.load_generator(path, image_size=size, z_dim=FLAGS.z_dim,
                                  num_classes=FLAGS.num_classes)[0]


def main(argv):
    del argv
    from oasis_tf.export import export_saved_model  # late: flags parse before TF starts

    generator = _load(FLAGS.generator, "generator")
    discriminator = _load(FLAGS.discriminator, "discriminator") if FLAGS.discriminator else None
    class_names = palette = None
    if FLAGS.class_names:
        with open(FLAGS.class_names) as f:
            class_names = [line.strip() for line in f if line.strip()]
    if FLAGS.palette:
        with open(FLAGS.palette) as f:
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


def run():
    try:
        app.run(main)
    except Exception as error:  # noqa: BLE001 - a clean message for the CLI
        print(f"export: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
