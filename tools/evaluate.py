"""Evaluate a generator on a dataset split: FID, mIoU, MS-SSIM -> JSON report + table.

    # a training run (its generator.keras, or --checkpoint latest|best|ckpt-N), on the
    # data folder its config.yaml records
    python tools/evaluate.py --model runs/synthetic-0001
    # a converted or official checkpoint
    python tools/evaluate.py --model ade20k_G.keras --dataset ade20k --data_root /data/ADEChallengeData2016 \
        --extractor standard:/models/classify_image_graph_def.pb --segmenter /models/upernet_savedmodel
    python tools/evaluate.py --model best_EMA.pth --image_size 256,512 --dataset cityscapes \
        --data_root /data/cityscapes --extractor standard:/models/inception-2015-12-05.tgz

--extractor: standard:<classify_image_graph_def.pb | inception-2015-12-05.tgz> (the FID
network of TTUR / TF-GAN / pytorch-fid: comparable with published FID), keras[:<weights.h5>]
(keras.applications.InceptionV3: NOT comparable with published FID), auto (standard if
found at $OASIS_TF_FID_INCEPTION or ~/.cache/oasis_tf, else cached Keras weights, else none),
none, or py:<module>:<attribute> (a custom extractor).
--segmenter: a SavedModel folder (or a .keras model) returning class ids or logits for
[-1, 1] images, synthetic (the cached tiny U-Net of the synthetic data set), none, or
auto (synthetic for the synthetic data set, else none).

Writes the report (--output, default <run>/evaluation-<split>.json or
evaluation-<model name>-<split>.json in the current folder) and prints a table. The real split's FID statistics
are cached as .npz (keys mu, sigma, as pytorch-fid) at --real_stats (default
<data_root>/fid_stats/<dataset>-<split>-<H>x<W>-<extractor>[-n<max_images>].npz).
"""

import os
import re
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Run folder, checkpoint folder, .keras generator or official .pth/.npz.")
flags.DEFINE_string("checkpoint", None, "For a run folder: latest, best or ckpt-N (default: its "
                    "generator.keras, else the latest checkpoint).")
flags.DEFINE_string("dataset", None, "Layout: ade20k, cityscapes, coco_stuff, folder, synthetic "
                    "(default: the run's config, else synthetic).")
flags.DEFINE_string("data_root", None, "Dataset folder (default: the run's data.root).")
flags.DEFINE_string("split", "val", "Split to evaluate on.")
flags.DEFINE_list("image_size", None, "H,W of an official .pth/.npz generator.")
flags.DEFINE_integer("z_dim", None, "Noise channels of an official checkpoint (default 64).")
flags.DEFINE_integer("num_classes", None, "Classes incl. don't-care (default: the generator's).")
flags.DEFINE_string("extractor", "auto", "standard:<path> | keras[:<weights>] | auto | none | "
                    "py:<module>:<attr>.")
flags.DEFINE_string("segmenter", "auto", "<SavedModel path or .keras> | synthetic | auto | none.")
flags.DEFINE_integer("segmenter_steps", 500, "Training steps of the synthetic segmenter.")
flags.DEFINE_string("real_stats", None, "Cache of the real FID statistics (.npz); 'none' for no cache.")
flags.DEFINE_string("output", None, "JSON report path.")
flags.DEFINE_integer("batch_size", 16, "Batch size.")
flags.DEFINE_integer("max_images", None, "Evaluate at most this many images.")
flags.DEFINE_integer("num_diversity_samples", 50, "Label maps for MS-SSIM (0: none).")
flags.DEFINE_integer("diversity_samples_per_label", 2, "Samples per label map for MS-SSIM.")
flags.DEFINE_integer("seed", 0, "Noise seed of image 0.")
flags.DEFINE_integer("ignore_index", 0, "Don't-care class for mIoU (-1: none).")
flags.mark_flags_as_required(["model"])


def _slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "_", text.split(" ")[0]).strip("_").lower() or "extractor"


def _load_segmenter(spec, layout, root, image_size, num_classes):
    spec = (spec or "none").strip()
    if spec.lower() == "auto":
        spec = "synthetic" if layout == "synthetic" else "none"
    if spec.lower() == "none":
        return None
    if spec.lower() == "synthetic":
        if layout not in ("synthetic", "ade20k"):
            raise app.UsageError("--segmenter synthetic works with the synthetic data set only")
        from oasis_tf.metrics.segmenter import get_synthetic_segmenter

        return get_synthetic_segmenter(root, image_size=image_size, steps=FLAGS.segmenter_steps,
                                       num_classes=num_classes)
    if spec.endswith(".keras"):
        import keras

        return keras.saving.load_model(spec, compile=False)
    if not os.path.isdir(spec):
        raise FileNotFoundError(f"--segmenter {spec}: no SavedModel folder there")
    return spec


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from oasis_tf import data as oasis_data  # imported late: flags parse before TensorFlow starts
    from oasis_tf.metrics import evaluate as ev

    size = None
    if FLAGS.image_size:
        size = tuple(int(s) for s in FLAGS.image_size)
        size = size * 2 if len(size) == 1 else size
    generator, info = ev.load_generator(FLAGS.model, image_size=size, z_dim=FLAGS.z_dim,
                                        num_classes=FLAGS.num_classes, checkpoint=FLAGS.checkpoint)
    config = None
    if info.get("config"):
        from oasis_tf.config import load_config

        config = load_config(info["config"])
    layout = FLAGS.dataset or (config.data.dataset if config is not None else "synthetic")
    root = FLAGS.data_root or (config.data.root if config is not None else None)
    if root is None:
        if layout == "synthetic":
            root = oasis_data.default_synthetic_root()
        else:
            raise app.UsageError(f"--data_root is required for the {layout} layout")
    image_size = tuple(int(s) for s in generator.image_size)
    num_classes = FLAGS.num_classes or int(generator.num_classes)
    if num_classes != int(generator.num_classes):
        raise app.UsageError(f"--num_classes {num_classes} but the generator has {generator.num_classes}")

    extractor = ev.make_extractor(FLAGS.extractor)
    if extractor is None and FLAGS.extractor.strip().lower() == "auto":
        print("evaluate: no FID: no standard Inception file ($OASIS_TF_FID_INCEPTION or "
              "~/.cache/oasis_tf/classify_image_graph_def.pb) and no cached Keras InceptionV3 weights; "
              "pass --extractor standard:<path>", file=sys.stderr)
    synthetic_opts = ev.synthetic_options(root) if layout == "synthetic" else None
    dataset = oasis_data.load_dataset(layout, root, split=FLAGS.split, image_size=image_size,
                                      batch_size=FLAGS.batch_size, training=False, num_classes=num_classes,
                                      synthetic_options=synthetic_opts)
    segmenter = _load_segmenter(FLAGS.segmenter, layout, root, image_size, num_classes)

    real_stats = FLAGS.real_stats
    if real_stats is not None and real_stats.lower() == "none":
        real_stats = None
    elif real_stats is None and extractor is not None:
        name = f"{layout}-{FLAGS.split}-{image_size[0]}x{image_size[1]}-{_slug(ev.extractor_info(extractor)['fid_extractor'])}"
        if FLAGS.max_images:
            name += f"-n{FLAGS.max_images}"
        real_stats = os.path.join(root, "fid_stats", name + ".npz")

    class_names = None
    if layout == "synthetic":
        class_names = list(oasis_data.CLASS_NAMES)
    report = ev.evaluate_generator(
        generator, dataset, extractor=extractor, segmenter=segmenter, real_stats_path=real_stats,
        num_diversity_samples=FLAGS.num_diversity_samples, max_images=FLAGS.max_images, seed=FLAGS.seed,
        diversity_samples_per_label=FLAGS.diversity_samples_per_label,
        ignore_index=None if FLAGS.ignore_index < 0 else FLAGS.ignore_index, class_names=class_names)
    report = dict(model=info["model"], loaded=info.get("source"), dataset=layout, data_root=os.fspath(root),
                  split=FLAGS.split, **report)

    output = FLAGS.output
    if output is None:
        model_path = os.path.normpath(FLAGS.model)
        if os.path.isdir(model_path) and info.get("config") and os.path.dirname(info["config"]) == model_path:
            output = os.path.join(model_path, f"evaluation-{FLAGS.split}.json")
        else:
            stem = re.sub(r"(\.keras|\.pth|\.pt|\.npz)$", "", os.path.basename(model_path))
            output = f"evaluation-{stem}-{FLAGS.split}.json"  # in the current folder
    ev.write_report(report, output)
    title = (f"Evaluation of {info['model']} ({info.get('source')}) on {layout} {FLAGS.split} "
             f"({report['num_images']} images)")
    print(ev.format_report(report, title=title))
    print(f"report: {output}")


def run():
    try:
        app.run(main)
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - a clean message for the CLI
        print(f"evaluate: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
