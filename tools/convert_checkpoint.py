"""Convert an official OASIS PyTorch checkpoint to Keras.

    python tools/convert_checkpoint.py --input best_EMA.pth --output g.keras \
        --image_size 256,512
    python tools/convert_checkpoint.py --input best_D.pth --output d.keras

Reads ``*_G.pth`` / ``*_EMA.pth`` / ``*_D.pth`` (torch is optional) or an
``.npz`` of the same state dict, infers and checks the architecture, and writes
``.keras`` (whole model) or ``.weights.h5``. Nothing is written when any key is
missing, unexpected or mis-shaped, or when --num_classes contradicts the weights
(a discriminator's class count is in its weights; a generator's first layer takes
z_dim + num_classes channels, and a --num_classes that leaves no noise channels
is refused; otherwise the split used is printed).
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("input", None, "Official state dict: .pth/.pt or .npz.")
flags.DEFINE_string("output", None, "Destination: .keras or .weights.h5.")
flags.DEFINE_enum("network", "auto", ["auto", "generator", "discriminator"],
                  "Which network the checkpoint holds (auto: from the key names).")
flags.DEFINE_list("image_size", None, "Generator output H,W, e.g. 256,512 (Cityscapes) "
                  "or 256,256 (ADE20K, COCO-Stuff). Required for generators.")
flags.DEFINE_integer("z_dim", None, "Noise channels (default 64 unless --num_classes).")
flags.DEFINE_integer("num_classes", None, "Classes incl. don't-care (semantic_nc).")
flags.DEFINE_bool("use_3d_noise", True, "The checkpoint was trained with 3D noise.")
flags.DEFINE_bool("overwrite", False, "Replace an existing output file.")
flags.mark_flags_as_required(["input", "output"])


def main(argv):
    del argv
    from oasis_tf import convert  # imported late: flags parse before TensorFlow starts

    state_dict = convert.read_state_dict(FLAGS.input)
    network = FLAGS.network
    if network == "auto":
        network = convert.detect_network(state_dict)
    if network == "generator":
        if not FLAGS.image_size:
            raise app.UsageError("--image_size H,W is required for a generator")
        size = tuple(int(s) for s in FLAGS.image_size)
        size = size * 2 if len(size) == 1 else size
        model = convert.load_official_generator(
            state_dict, image_size=size, z_dim=FLAGS.z_dim,
            num_classes=FLAGS.num_classes, use_3d_noise=FLAGS.use_3d_noise)
        # fc takes z_dim + num_classes channels (3D noise): shapes alone cannot split them
        source = ("--num_classes" if FLAGS.num_classes else "--z_dim" if FLAGS.z_dim
                  else "the official z_dim 64")
        print(f"split used: num_classes={model.num_classes}, z_dim={model.z_dim} "
              f"(from {source})")
    else:
        model = convert.load_official_discriminator(state_dict)
        if FLAGS.num_classes is not None and FLAGS.num_classes != int(model.num_classes):
            raise ValueError(f"--num_classes {FLAGS.num_classes} contradicts the weights: "
                             f"layer_up_last of {FLAGS.input} has {model.num_classes + 1} "
                             f"outputs, i.e. num_classes={model.num_classes} (+1 fake)")
    convert.save_network(model, FLAGS.output, overwrite=FLAGS.overwrite)
    params = sum(int(v.numpy().size) for v in model.trainable_weights)
    print(f"{network}: {model.get_config()}")
    print(f"{len(state_dict)} tensors, {params:,} parameters -> {FLAGS.output}")


def run():
    try:
        app.run(main)
    except Exception as error:  # noqa: BLE001 - a clean message for the CLI
        print(f"convert_checkpoint: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
