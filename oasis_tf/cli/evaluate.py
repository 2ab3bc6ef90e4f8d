r"""oasis-evaluate: FID, mIoU (per class) and MS-SSIM of a generator on a data set split.

    # a training run (its generator.keras, or --checkpoint latest|best|ckpt-N), on the
    # data folder its config.yaml records
    oasis-evaluate --model runs/synthetic-0001
    # a converted or official checkpoint
    oasis-evaluate --model ade20k_G.keras --dataset ade20k \
        --data_root /data/ADEChallengeData2016 \
        --extractor standard:/models/classify_image_graph_def.pb \
        --segmenter /models/upernet_savedmodel
    oasis-evaluate --model best_EMA.pth --image_size 256,512 --dataset cityscapes \
        --data_root /data/cityscapes --extractor standard:/models/inception-2015-12-05.tgz

(From a checkout, `python tools/evaluate.py` takes the same flags.)

--extractor: standard:<classify_image_graph_def.pb | inception-2015-12-05.tgz> (the FID
network of TTUR / TF-GAN / pytorch-fid: comparable with published FID),
keras[:<weights.h5>] (keras.applications.InceptionV3: NOT comparable with published
FID), auto (standard if found at $OASIS_TF_FID_INCEPTION or ~/.cache/oasis_tf, else
cached Keras weights, else none), none, or py:<module>:<attribute> (a custom extractor).
--segmenter: a SavedModel folder (or a .keras model) returning class ids or logits for
[-1, 1] images, synthetic (the cached tiny U-Net of the synthetic data set), none, or
auto (synthetic for the synthetic data set, else none).

Writes the report (--output, default <run>/evaluation-<split>.json, or
evaluation-<model name>-<split>.json in the current folder) with a bar chart of
per-class IoU beside it (<report>-class_iou.png), and prints the tables (per class:
worst to best). docs/evaluation.md has the paper's protocol per data set and the
command that follows it. The real split's FID statistics are cached as .npz (keys mu,
sigma, as pytorch-fid) at --real_stats (default
<data_root>/fid_stats/<dataset>-<split>-<H>x<W>-<extractor>[-n<max_images>].npz).
"""

import os
import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
common.define_generator_source(FLAGS, "model")
common.define_official_checkpoint(FLAGS)
flags.DEFINE_string("checkpoint", None, "For a run folder: latest, best or ckpt-N (default: "
                    "its generator.keras, else the latest checkpoint).", flag_values=FLAGS)
common.define_dataset(FLAGS, dataset_help="Layout: ade20k, cityscapes, coco_stuff, folder, "
                      "synthetic (default: the run's config, else synthetic).")
flags.DEFINE_string("extractor", "auto", "standard:<path> | keras[:<weights>] | auto | none | "
                    "py:<module>:<attr>.", flag_values=FLAGS)
flags.DEFINE_string("segmenter", "auto", "<SavedModel path or .keras> | synthetic | auto | "
                    "none.", flag_values=FLAGS)
flags.DEFINE_integer("segmenter_steps", 500, "Training steps of the synthetic segmenter.",
                     flag_values=FLAGS)
flags.DEFINE_string("real_stats", None, "Cache of the real FID statistics (.npz); 'none' for "
                    "no cache.", flag_values=FLAGS)
common.define_output(FLAGS, "JSON report path.")
common.define_batch_size(FLAGS, 16, "Batch size.")
flags.DEFINE_integer("num_diversity_samples", 50, "Label maps for MS-SSIM (0: none).",
                     flag_values=FLAGS)
flags.DEFINE_integer("diversity_samples_per_label", 2, "Samples per label map for MS-SSIM.",
                     flag_values=FLAGS)
common.define_seed(FLAGS, 0, "Noise seed of image 0.")
flags.DEFINE_integer("ignore_index", 0, "Don't-care class for mIoU (-1: none).",
                     flag_values=FLAGS)


def main(argv):
    common.reject_arguments(argv)
    from oasis_tf import data as oasis_data
    from oasis_tf.images import class_names_for
    from oasis_tf.data.resolve import model_data
    from oasis_tf import metrics
    from oasis_tf.metrics.report import class_chart_path
    from oasis_tf.metrics.segmenter import load_segmenter

    generator, info = common.load_generator(FLAGS, "model", checkpoint=FLAGS.checkpoint)
    try:
        layout, root, options = model_data(info.get("config"), FLAGS.dataset,
                                           FLAGS.data_root)
    except ValueError as error:
        raise common.UsageError(str(error)) from None
    image_size = tuple(int(s) for s in generator.image_size)
    num_classes = FLAGS.num_classes or int(generator.num_classes)
    if num_classes != int(generator.num_classes):
        raise common.UsageError(f"--num_classes {num_classes} but the generator has "
                                f"{generator.num_classes}")
    extractor = metrics.make_extractor(FLAGS.extractor)
    if extractor is None and FLAGS.extractor.strip().lower() == "auto":
        print("evaluate: no FID: no standard Inception file ($OASIS_TF_FID_INCEPTION or "
              "~/.cache/oasis_tf/classify_image_graph_def.pb) and no cached Keras InceptionV3 "
              "weights; pass --extractor standard:<path>", file=sys.stderr)
    dataset = oasis_data.load_dataset(layout, root, split=FLAGS.split, image_size=image_size,
                                      batch_size=FLAGS.batch_size, training=False,
                                      num_classes=num_classes, **options)
    try:
        segmenter = load_segmenter(FLAGS.segmenter, layout, root, image_size, num_classes,
                                   steps=FLAGS.segmenter_steps)
    except ValueError as error:
        raise common.UsageError(f"--segmenter: {error}") from None
    real_stats = FLAGS.real_stats
    if real_stats is not None and real_stats.lower() == "none":
        real_stats = None
    elif real_stats is None and extractor is not None:
        real_stats = metrics.default_real_stats_path(root, layout, FLAGS.split, image_size,
                                                     extractor, FLAGS.max_images)

    # the generator's own class names, else its data set's table (or class_<id>)
    class_names = class_names_for(generator, dataset=layout)
    report = metrics.evaluate_generator(
        generator, dataset, extractor=extractor, segmenter=segmenter,
        real_stats_path=real_stats, num_diversity_samples=FLAGS.num_diversity_samples,
        max_images=FLAGS.max_images, seed=FLAGS.seed,
        diversity_samples_per_label=FLAGS.diversity_samples_per_label,
        ignore_index=None if FLAGS.ignore_index < 0 else FLAGS.ignore_index,
        class_names=class_names)
    report = dict(model=info["model"], loaded=info.get("source"), dataset=layout,
                  data_root=os.fspath(root), split=FLAGS.split, **report)

    output = FLAGS.output or metrics.default_report_path(FLAGS.model, info.get("config"),
                                                         FLAGS.split)
    metrics.write_report(report, output)
    title = (f"Evaluation of {info['model']} ({info.get('source')}) on {layout} {FLAGS.split} "
             f"({report['num_images']} images)")
    print(metrics.format_report(report, title=title))
    if report.get("classes"):
        print(metrics.format_class_table(report))
    print(f"report: {output}")
    chart = class_chart_path(output)
    if os.path.exists(chart):
        print(f"per-class IoU chart: {chart}")


def run(argv=None):
    """The console script ``oasis-evaluate``."""
    return common.run_command("oasis-evaluate", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
