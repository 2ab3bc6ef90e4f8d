r"""oasis-generate: images from label maps with a trained or converted OASIS generator.

    # 4 samples (seeds 0..3) of every label PNG in a folder
    oasis-generate --generator runs/synthetic-0001 --labels labels/ --num_samples 4 \
        --output_dir out/
    # an official checkpoint on the ADE20K validation split
    oasis-generate --generator best_EMA.pth --image_size 256,256 --dataset ade20k \
        --data_root /data/ADEChallengeData2016 --max_images 16 --output_dir out/
    # local editing: redraw the noise of classes 3 and 7 only (sample 0 elsewhere)
    oasis-generate --generator runs/synthetic-0001 --labels scene.png \
        --resample_classes 3,7 --num_samples 4 --output_dir out/
    # noise interpolation strip between seeds 1 and 2
    oasis-generate --generator runs/synthetic-0001 --labels scene.png --interpolate 1,2 \
        --steps 8 --output_dir out/

(From a checkout, `python tools/generate.py` takes the same flags.)

Label PNGs are single-channel class-id maps or RGB images painted in the model's
palette (its data set's colours, ``oasis_tf.palettes``): each pixel takes the class
of the nearest palette colour, and colours far from every palette entry are refused
(``oasis_tf.images.read_label_image``). Outputs: the images, the colourised label
maps beside them (``<name>_label.png``), a grid per label map, ``grid.png`` and
``generation.json`` (see ``oasis_tf.inference.write_generation``). Every image comes
from ``oasis_tf.inference.OASISPipeline``, the one pipeline of every front end: seed
``s`` gives the same image as the studio and the ``serving_default`` signature with
seed ``s``.
"""

import os
import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
common.define_generator_source(FLAGS, "generator")
common.define_official_checkpoint(FLAGS)
common.define_labels(FLAGS, "A label PNG or a folder of label PNGs: class ids (single "
                     "channel) or colour-coded in the model's palette (RGB).")
common.define_dataset(FLAGS, dataset_help="Data set layout instead of --labels: ade20k, "
                      "cityscapes, coco_stuff, folder or synthetic.")
flags.DEFINE_bool("resize_labels", False, "Resize label PNGs of another size (nearest).",
                  flag_values=FLAGS)
common.define_output_dir(FLAGS, "Output folder.")
flags.DEFINE_integer("num_samples", 1, "Samples per label map (seeds --seed, --seed+1, ...).",
                     lower_bound=1, flag_values=FLAGS)
common.define_seed(FLAGS, 0, "First seed.")
common.define_seeds(FLAGS, None, "Explicit seeds (overrides --num_samples/--seed).")
flags.DEFINE_list("resample_classes", None, "Local editing: class ids whose pixels get new "
                  "noise; the noise of --base_seed is kept elsewhere.", flag_values=FLAGS)
flags.DEFINE_integer("base_seed", 0, "Sample kept outside --resample_classes.",
                     flag_values=FLAGS)
flags.DEFINE_list("interpolate", None, "SEED_A,SEED_B: noise interpolation strip.",
                  flag_values=FLAGS)
flags.DEFINE_integer("steps", 8, "Images in an interpolation strip (>= 2).", lower_bound=2,
                     flag_values=FLAGS)
flags.DEFINE_enum("interp_mode", "slerp", ["slerp", "linear"], "Noise interpolation.",
                  flag_values=FLAGS)
common.define_batch_size(FLAGS, 8)


def main(argv):
    common.reject_arguments(argv)
    from oasis_tf.images import list_label_pngs
    from oasis_tf.inference import dataset_label_maps, write_generation

    if (FLAGS.labels is None) == (FLAGS.dataset is None):
        raise common.UsageError("give exactly one of --labels and --dataset")
    if FLAGS.resample_classes and FLAGS.interpolate:
        raise common.UsageError("--resample_classes and --interpolate do not combine")
    if FLAGS.interpolate and len(FLAGS.interpolate) != 2:
        raise common.UsageError("--interpolate takes two seeds: SEED_A,SEED_B")
    pipeline = common.load_pipeline(FLAGS, "generator", batch_size=FLAGS.batch_size)
    classes = [int(c) for c in FLAGS.resample_classes or []]
    bad = [c for c in classes if not 0 <= c < pipeline.num_classes]
    if bad:
        raise common.UsageError(f"--resample_classes {bad} out of range "
                                f"0..{pipeline.num_classes - 1}")
    if FLAGS.labels is not None:
        label_maps = [(os.path.splitext(os.path.basename(f))[0],
                       pipeline.read_label(f, resize=FLAGS.resize_labels))
                      for f in list_label_pngs(FLAGS.labels)[:FLAGS.max_images]]
    else:
        from oasis_tf.data.resolve import model_data

        try:
            layout, root, options = model_data(pipeline.config_path, FLAGS.dataset,
                                               FLAGS.data_root)
        except ValueError as error:
            raise common.UsageError(str(error)) from None
        label_maps = dataset_label_maps(layout, root, pipeline.image_size, split=FLAGS.split,
                                        num_classes=pipeline.num_classes,
                                        max_images=FLAGS.max_images, **options)
    seeds = ([int(s) for s in FLAGS.seeds] if FLAGS.seeds
             else list(range(FLAGS.seed, FLAGS.seed + FLAGS.num_samples)))
    manifest = write_generation(
        pipeline, label_maps, FLAGS.output_dir, seeds=seeds,
        resample_classes=classes or None, base_seed=FLAGS.base_seed,
        interpolate=[int(s) for s in FLAGS.interpolate] if FLAGS.interpolate else None,
        steps=FLAGS.steps, interp_mode=FLAGS.interp_mode)
    count = sum(len(i["images"]) + ("strip" in i) for i in manifest["items"])
    print(f"generate: {manifest['mode']}: {len(label_maps)} label map(s) -> {count} file(s) "
          f"in {FLAGS.output_dir} (grid: {manifest.get('grid')})")


def run(argv=None):
    """The console script ``oasis-generate``."""
    return common.run_command("oasis-generate", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
