"""Mean intersection-over-union of a segmenter's predictions on generated images.

Convention (the confusion-matrix mIoU used by SPADE / OASIS evaluations, e.g.
the Cityscapes ``fast_hist`` / ``per_class_iu`` + ``nanmean`` code):

* the confusion matrix ``cm[true, pred]`` counts pixels; pixels whose *true*
  label is ``ignore_index`` (don't-care) are left out entirely — whatever was
  predicted there. A pixel of a real class predicted as ``ignore_index`` still
  counts as a miss (FN) of its class.
* per class ``c``: ``IoU_c = TP / (TP + FP + FN)``, i.e.
  ``cm[c, c] / (cm[c, :].sum() + cm[:, c].sum() - cm[c, c])``;
  ``NaN`` when ``TP + FP + FN == 0`` (absent from both the ground truth and the
  predictions) and for ``ignore_index`` itself.
* ``miou`` = mean of the non-NaN per-class IoUs: every class that occurs in
  the ground truth or in the predictions (of the counted pixels), don't-care
  excluded. A class that is only predicted (a false positive everywhere) so
  counts with IoU 0.
"""

from __future__ import annotations

import os

import numpy as np


def confusion_matrix(pred_ids, true_ids, num_classes: int, ignore_index=0) -> np.ndarray:
    """``cm[t, p]``: number of pixels with true class ``t`` predicted as ``p`` (int64, [K, K]).

    Pixels with ``true_ids == ignore_index`` are excluded (``ignore_index=None``
    keeps all). ``ignore_index`` may lie outside ``[0, num_classes)`` (e.g. 255);
    any other id outside that range raises ``ValueError``.
    """
    pred = np.asarray(pred_ids)
    true = np.asarray(true_ids)
    if pred.shape != true.shape:
        raise ValueError(f"prediction and label shapes differ: {pred.shape} vs {true.shape}")
    if not (np.issubdtype(pred.dtype, np.integer) and np.issubdtype(true.dtype, np.integer)):
        raise ValueError(f"class ids must be integers, got {pred.dtype} and {true.dtype}")
    pred = pred.reshape(-1).astype(np.int64)
    true = true.reshape(-1).astype(np.int64)
    if ignore_index is not None:
        keep = true != ignore_index
        pred, true = pred[keep], true[keep]
    for name, ids in (("true", true), ("predicted", pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            raise ValueError(
                f"{name} class ids must lie in [0, {num_classes}); found range [{ids.min()}, {ids.max()}]"
            )
    counts = np.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def iou_from_confusion(cm, ignore_index=0) -> tuple[float, np.ndarray]:
    """(miou, per_class) from a confusion matrix, with the convention in the module docstring."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - tp
    per_class = np.full(cm.shape[0], np.nan)
    present = union > 0
    per_class[present] = tp[present] / union[present]
    if ignore_index is not None and 0 <= ignore_index < cm.shape[0]:
        per_class[ignore_index] = np.nan
    valid = ~np.isnan(per_class)
    miou = float(per_class[valid].mean()) if valid.any() else float("nan")
    return miou, per_class


def mean_iou(pred_ids, true_ids, num_classes: int, ignore_index=0) -> tuple[float, np.ndarray]:
    """(miou, per_class IoU [num_classes] with NaN for absent classes and ``ignore_index``).

    ``miou`` is NaN when no class is present at all.
    """
    return iou_from_confusion(confusion_matrix(pred_ids, true_ids, num_classes, ignore_index), ignore_index)


def pixel_accuracy(cm) -> float:
    """Share of the counted pixels (don't-care already left out of ``cm``) whose class was predicted
    right: ``trace(cm) / cm.sum()``; NaN when no pixel was counted."""
    cm = np.asarray(cm, dtype=np.float64)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else float("nan")


class MeanIoUAccumulator:
    """Accumulates the confusion matrix over batches (mIoU over the whole set, not a mean of batch mIoUs)."""

    def __init__(self, num_classes: int, ignore_index=0):
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred_ids, true_ids) -> None:
        self.confusion += confusion_matrix(pred_ids, true_ids, self.num_classes, self.ignore_index)

    def result(self) -> tuple[float, np.ndarray]:
        return iou_from_confusion(self.confusion, self.ignore_index)


# --------------------------------------------------------------------------
# Running a segmenter
# --------------------------------------------------------------------------

_SAVED_MODEL_SIGNATURES = ("segment", "serving_default")
_OUTPUT_KEYS = ("ids", "labels", "label", "segmentation", "logits")


def _load_saved_model(path):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    for key in _SAVED_MODEL_SIGNATURES:
        if key in getattr(loaded, "signatures", {}):
            signature = loaded.signatures[key]
            _, kwargs = signature.structured_input_signature
            if len(kwargs) != 1:
                raise ValueError(
                    f"SavedModel {path}: signature '{key}' takes {sorted(kwargs)}; a segmenter signature needs "
                    "exactly one input (the images)"
                )
            (input_name,) = kwargs

            def call(images, _sig=signature, _name=input_name, _dtype=kwargs[input_name].dtype):
                return _sig(**{_name: tf.cast(images, _dtype)})

            call.loaded = loaded  # keep the object alive
            return call
    if callable(loaded):
        return loaded
    raise ValueError(f"SavedModel {path} has no 'segment' or 'serving_default' signature and is not callable")


def _to_ids(output) -> np.ndarray:
    if isinstance(output, dict):
        if len(output) == 1:
            output = next(iter(output.values()))
        else:
            key = next((k for k in _OUTPUT_KEYS if k in output), None)
            if key is None:
                raise ValueError(f"segmenter returned outputs {sorted(output)}; expected one of {_OUTPUT_KEYS}")
            output = output[key]
    out = np.asarray(output)
    if np.issubdtype(out.dtype, np.integer):
        if out.ndim == 4 and out.shape[-1] == 1:
            out = out[..., 0]
        if out.ndim != 3:
            raise ValueError(f"segmenter class ids must be [B, H, W], got shape {out.shape}")
        return out.astype(np.int64)
    if out.ndim == 4:
        return np.argmax(out, axis=-1).astype(np.int64)
    raise ValueError(
        f"segmenter output must be integer ids [B, H, W] or float logits [B, H, W, K]; got {out.dtype} {out.shape}"
    )


def segment_with(segmenter, images) -> np.ndarray:
    """Class ids [B, H, W] (int64) for ``images`` from any segmenter.

    ``segmenter`` may be:

    * a Keras model (or any callable) returning float logits/probabilities
      ``[B, H, W, K]`` — reduced with argmax over the last axis;
    * a callable returning integer class ids ``[B, H, W]`` (or ``[B, H, W, 1]``);
    * a SavedModel path (str / PathLike): loaded with ``tf.saved_model.load``;
      its ``segment`` signature is called if present, else ``serving_default``
      (each must take a single input, passed by its name, cast to its dtype),
      else the loaded object itself. A dict output with several entries is
      read at the first of ``ids, labels, label, segmentation, logits``.
      The loaded model is cached per path.

    ``images`` are passed through unchanged (the project's [-1, 1] float32);
    a segmenter needing other preprocessing should wrap it.
    """
    if isinstance(segmenter, (str, os.PathLike)):
        path = os.fspath(segmenter)
        if path not in _SAVED_MODEL_CACHE:
            if not os.path.isdir(path):
                raise FileNotFoundError(f"segmenter SavedModel folder not found: {path}")
            _SAVED_MODEL_CACHE[path] = _load_saved_model(path)
        segmenter = _SAVED_MODEL_CACHE[path]
    if not callable(segmenter):
        raise TypeError(f"segmenter must be a Keras model, a callable or a SavedModel path; got {type(segmenter)}")
    import keras

    is_keras = isinstance(segmenter, keras.Model)
    output = segmenter(images, training=False) if is_keras else segmenter(images)
    return _to_ids(output)


_SAVED_MODEL_CACHE: dict = {}
