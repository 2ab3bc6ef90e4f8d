"""oasis-convert: an official OASIS PyTorch checkpoint -> a Keras model file.

    oasis-convert --input best_EMA.pth --output g.keras --image_size 256,512
    oasis-convert --input best_D.pth --output d.keras
    oasis-convert --input best_EMA.npz --output g.weights.h5 --image_size 256 --num_classes 151

(From a checkout, `python tools/convert_checkpoint.py` takes the same flags.)

Reads ``*_G.pth`` / ``*_EMA.pth`` / ``*_D.pth`` (torch is optional) or an ``.npz`` of
the same state dict, infers and checks the architecture, and writes ``.keras`` (whole
model) or ``.weights.h5``. Nothing is written when any key is missing, unexpected or
mis-shaped, or when --num_classes contradicts the weights (a discriminator's class
count is in its weights; a generator's first layer takes z_dim + num_classes channels,
and a --num_classes that leaves no noise channels is refused; otherwise the split used
is printed).
"""

import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
flags.DEFINE_string("input", None, "Official state dict: .pth/.pt or .npz.", flag_values=FLAGS)
common.define_output(FLAGS, "Destination: .keras or .weights.h5.")
flags.DEFINE_enum("network", "auto", ["auto", "generator", "discriminator"],
                  "Which network the checkpoint holds (auto: from the key names).",
                  flag_values=FLAGS)
common.define_official_checkpoint(FLAGS)
flags.DEFINE_bool("use_3d_noise", True, "The checkpoint was trained with 3D noise.",
                  flag_values=FLAGS)
common.define_overwrite(FLAGS, "Replace an existing output file.")
flags.mark_flags_as_required(["input", "output"], flag_values=FLAGS)


def main(argv):
    common.reject_arguments(argv)
    from oasis_tf import convert

    state_dict = convert.read_state_dict(FLAGS.input)
    network = FLAGS.network
    if network == "auto":
        network = convert.detect_network(state_dict)
    official = common.official_checkpoint(FLAGS)
    if network == "generator":
        if official["image_size"] is None:
            raise common.UsageError("--image_size H,W is required for a generator")
        model = convert.load_official_generator(state_dict, use_3d_noise=FLAGS.use_3d_noise,
                                                **official)
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


def run(argv=None):
    """The console script ``oasis-convert``."""
    return common.run_command("oasis-convert", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
