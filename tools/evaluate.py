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
evaluation-<model name>-<split>.json in the current folder) with a bar chart of per-class IoU
beside it (<report>-class_iou.png), and prints the tables (per class: worst to best).
docs/evaluation.md has the paper's protocol per data set and the command that follows it. The real split's FID statistics
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


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from oasis_tf import data as oasis_data  # imported late: flags parse before TensorFlow starts
    from oasis_tf.images import class_names_for
    from oasis_tf.metrics import evaluate as ev
    from oasis_tf.metrics.report import class_chart_path

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
    dataset = oasis_data.load_dataset(layout, root, split=FLAGS.split, image_size=image_size,
                                      batch_size=FLAGS.batch_size, training=False, num_classes=num_classes)
    from oasis_tf.metrics.segmenter import load_segmenter

    try:
        segmenter = load_segmenter(FLAGS.segmenter, layout, root, image_size, num_classes,
                                   steps=FLAGS.segmenter_steps)
    except ValueError as error:
        raise app.UsageError(f"--segmenter: {error}") from None

    real_stats = FLAGS.real_stats
    if real_stats is not None and real_stats.lower() == "none":
        real_stats = None
    elif real_stats is None and extractor is not None:
        real_stats = ev.default_real_stats_path(root, layout, FLAGS.split, image_size, extractor,
                                                FLAGS.max_images)

    # the data set's class list (generic class_<id> names where the counts differ)
    class_names = class_names_for(generator.num_classes, dataset=layout)
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
    if report.get("classes"):
        print(ev.format_class_table(report))
    print(f"report: {output}")
    chart = class_chart_path(output)
    if os.path.exists(chart):
        print(f"per-class IoU chart: {chart}")


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
