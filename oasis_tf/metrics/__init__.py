"""Evaluation metrics: FID, mIoU and MS-SSIM diversity.

Modules: `fid` (the distance and the statistics files), `extractors` (the FID
feature networks and their specs), `miou`, `diversity`, `generation` (the
generation loop every evaluation shares), `evaluate` (a generator on a split),
`report` (tables, JSON, per-class chart), `segmenter` (the synthetic segmenter
and segmenter specs).

    fid = oasis_tf.metrics.fid_from_features(real_features, fake_features)
    miou, per_class = oasis_tf.metrics.mean_iou(pred_ids, true_ids, num_classes, ignore_index=0)
    div = oasis_tf.metrics.ms_ssim_diversity(images_a, images_b)
    report = oasis_tf.metrics.evaluate_generator(G, val_dataset, extractor="standard:<path>",
                                                 segmenter=..., real_stats_path="val_stats.npz")

FID numbers are comparable with papers only with `StandardFIDInceptionExtractor`
(the 2015-12-05 Inception graph); `KerasInceptionV3Extractor` results are
labelled ``comparable_with_papers=False``.
"""

from oasis_tf.metrics.extractors import (
    InceptionFeatureExtractor,
    KerasInceptionV3Extractor,
    StandardFIDInceptionExtractor,
    preprocess_keras_inception,
)
from oasis_tf.metrics.fid import (
    compute_fid,
    compute_statistics,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    load_statistics,
    load_statistics_for,
    save_statistics,
)
from oasis_tf.metrics.miou import (
    MeanIoUAccumulator,
    confusion_matrix,
    mean_iou,
    segment_with,
)
from oasis_tf.metrics.diversity import ms_ssim_diversity, ms_ssim_scales
from oasis_tf.metrics.evaluate import (
    GeneratorFID,
    evaluate_generator,
    evaluate_synthetic,
    default_real_stats_path,
    default_report_path,
    extractor_info,
    make_extractor,
)
from oasis_tf.metrics.report import (NOT_COMPARABLE, format_class_table, format_report,
                                     plot_class_iou, write_report)
from oasis_tf.metrics.segmenter import get_synthetic_segmenter, load_segmenter

__all__ = [
    "frechet_distance", "fid_from_features", "feature_statistics", "save_statistics",
    "load_statistics", "load_statistics_for", "compute_statistics", "compute_fid",
    "InceptionFeatureExtractor", "KerasInceptionV3Extractor", "StandardFIDInceptionExtractor",
    "preprocess_keras_inception",
    "mean_iou", "confusion_matrix", "MeanIoUAccumulator", "segment_with",
    "ms_ssim_diversity", "ms_ssim_scales",
    "evaluate_generator", "evaluate_synthetic", "GeneratorFID", "make_extractor", "extractor_info", "format_report",
    "write_report", "format_class_table", "plot_class_iou", "default_real_stats_path", "default_report_path", "NOT_COMPARABLE",
    "get_synthetic_segmenter", "load_segmenter",
]
