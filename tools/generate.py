"""Generate images from label maps with a trained or converted OASIS generator.

    # 4 samples (seeds 0..3) of every label PNG in a folder
    python tools/generate.py --generator runs/synthetic-0001 --labels labels/ \
        --num_samples 4 --output_dir out/
    # an official checkpoint on the ADE20K validation split
    python tools/generate.py --generator best_EMA.pth --image_size 256,256 \
        --dataset ade20k --data_root /data/ADEChallengeData2016 --max_images 16 --output_dir out/
    # local editing: redraw the noise of classes 3 and 7 only (sample 0 elsewhere)
    python tools/generate.py --generator runs/synthetic-0001 --labels scene.png --resample_classes 3,7 \
        --num_samples 4 --output_dir out/
    # noise interpolation strip between seeds 1 and 2
    python tools/generate.py --generator runs/synthetic-0001 --labels scene.png --interpolate 1,2 \
        --steps 8 --output_dir out/

Label PNGs are single-channel class-id maps or RGB images painted in the model's
palette (its dataset's colours, ``oasis_tf.palettes``): each pixel takes the class of
the nearest palette colour, and colours far from every palette entry are refused
(``oasis_tf.images.read_label_image``). Outputs: the images, the colourised
label maps beside them (``<name>_label.png``), a grid per label map, ``grid.png``
and ``generation.json`` (see ``oasis_tf.generate.write_generation``). Every image
comes from ``oasis_tf.inference.generate``, as in the SavedModel: seed ``s`` gives
the same image as the ``serving_default`` signature with seed ``s``.
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("generator", None, "A .keras file, an official .pth/.pt/.npz state dict "
                    "(needs --image_size), a training run folder (generator.keras) or an "
                    "export version folder.")
flags.DEFINE_list("image_size", None, "H,W (or one size) of an official checkpoint.")
flags.DEFINE_integer("z_dim", None, "Noise channels of an official checkpoint (default 64).")
flags.DEFINE_integer("num_classes", None, "Classes of an official checkpoint / folder dataset.")
flags.DEFINE_string("labels", None, "A label PNG or a folder of label PNGs: class ids "
                    "(single channel) or colour-coded in the model's palette (RGB).")
flags.DEFINE_string("dataset", None, "Dataset layout instead of --labels: ade20k, cityscapes, "
                    "coco_stuff, folder or synthetic.")
flags.DEFINE_string("data_root", None, "Dataset folder for --dataset.")
flags.DEFINE_string("split", "val", "Dataset split for --dataset.")
flags.DEFINE_integer("max_images", None, "At most this many label maps.")
flags.DEFINE_bool("resize_labels", False, "Resize label PNGs of another size (nearest).")
flags.DEFINE_string("output_dir", None, "Output folder.")
flags.DEFINE_integer("num_samples", 1, "Samples per label map (seeds --seed, --seed+1, ...).")
flags.DEFINE_integer("seed", 0, "First seed.")
flags.DEFINE_list("seeds", None, "Explicit seeds (overrides --num_samples/--seed).")
flags.DEFINE_list("resample_classes", None, "Local editing: class ids whose pixels get new "
                  "noise; the noise of --base_seed is kept elsewhere.")
flags.DEFINE_integer("base_seed", 0, "Sample kept outside --resample_classes.")
flags.DEFINE_list("interpolate", None, "SEED_A,SEED_B: noise interpolation strip.")
flags.DEFINE_integer("steps", 8, "Images in an interpolation strip (>= 2).")
flags.DEFINE_enum("interp_mode", "slerp", ["slerp", "linear"], "Noise interpolation.")
flags.DEFINE_integer("batch_size", 8, "Images per generator call.")
flags.mark_flags_as_required(["generator", "output_dir"])


def _size(values):
    if not values:
        return None
    size = tuple(int(s) for s in values)
    return size * 2 if len(size) == 1 else size


def main(argv):
    del argv
    import os

    from oasis_tf import generate as gen

    if (FLAGS.labels is None) == (FLAGS.dataset is None):
        raise app.UsageError("give exactly one of --labels and --dataset")
    if FLAGS.resample_classes and FLAGS.interpolate:
        raise app.UsageError("--resample_classes and --interpolate do not combine")
    if FLAGS.interpolate and len(FLAGS.interpolate) != 2:
        raise app.UsageError("--interpolate takes two seeds: SEED_A,SEED_B")
    if FLAGS.num_samples < 1:
        raise app.UsageError("--num_samples must be >= 1")
    generator, _ = gen.load_generator(FLAGS.generator, image_size=_size(FLAGS.image_size),
                                      z_dim=FLAGS.z_dim, num_classes=FLAGS.num_classes)
    size = tuple(int(s) for s in generator.image_size)
    num_classes = int(generator.num_classes)
    classes = [int(c) for c in FLAGS.resample_classes or []]
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise app.UsageError(f"--resample_classes {bad} out of range 0..{num_classes - 1}")
    if FLAGS.labels is not None:
        files = gen.list_label_pngs(FLAGS.labels)[:FLAGS.max_images]
        palette = gen.palette_for(generator)
        names = gen.class_names_for(generator)
        label_maps = [(os.path.splitext(os.path.basename(f))[0],
                       gen.read_label_image(f, num_classes, size, FLAGS.resize_labels,
                                            palette=palette, class_names=names))
                      for f in files]
    else:
        label_maps = gen.dataset_label_maps(FLAGS.dataset, FLAGS.data_root, size,
                                            split=FLAGS.split, num_classes=num_classes,
                                            max_images=FLAGS.max_images)
    seeds = ([int(s) for s in FLAGS.seeds] if FLAGS.seeds
             else list(range(FLAGS.seed, FLAGS.seed + FLAGS.num_samples)))
    manifest = gen.write_generation(
        generator, label_maps, FLAGS.output_dir, seeds=seeds,
        resample_classes=classes or None, base_seed=FLAGS.base_seed,
        interpolate=[int(s) for s in FLAGS.interpolate] if FLAGS.interpolate else None,
        steps=FLAGS.steps, interp_mode=FLAGS.interp_mode, batch_size=FLAGS.batch_size)
    count = sum(len(i["images"]) + ("strip" in i) for i in manifest["items"])
    print(f"generate: {manifest['mode']}: {len(label_maps)} label map(s) -> {count} file(s) "
          f"in {FLAGS.output_dir} (grid: {manifest.get('grid')})")


def run():
    try:
        app.run(main)
    except Exception as error:  # noqa: BLE001 - a clean message for the CLI
        print(f"generate: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
