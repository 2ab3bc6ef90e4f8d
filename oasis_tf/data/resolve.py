"""A run's config against its data: the "auto" values found, the data checked up front.

    config, report = resolve_config(load_config("folder"), "data/my_set")
    ds = load_dataset("folder", root, split="val", ..., **dataset_options(config))

`oasis_tf.training.train` calls `resolve_config` before it builds anything, so a bad
data set stops the run with one line per bad file (`DatasetProblemsError`) instead
of an error from inside the traced step.
"""

from __future__ import annotations

from oasis_tf.data.dataset_report import DatasetProblemsError
from oasis_tf.data.label_mapping import LabelMapping

__all__ = ["resolve_config", "label_mapping_from_config", "dataset_options",
           "needs_inspection", "DatasetProblemsError"]


def needs_inspection(config) -> bool:
    """Whether the data set of ``config`` is inspected when a run starts: an own data
    set (the folder layout) is, always (its "auto" values are found, the others
    checked)."""
    from oasis_tf.config.schema import OWN_DATA_LAYOUT

    return config.data.dataset == OWN_DATA_LAYOUT


def resolve_config(config, data_root=None, workers=None):
    """Inspects the data set of ``config`` and fills in its "auto" values.

    Args:
        config: an ``OASISConfig``.
        data_root: the data set's folder (default ``config.data.root``).
        workers: threads reading the files (see `inspect_dataset`).

    Returns:
        ``(config, report)``: the resolved config and the `DatasetReport`
        (``(config, None)`` for a layout that is not inspected).

    Raises:
        DatasetProblemsError: the data set has problems (its message lists them).
        ValueError: no data root.
    """
    from oasis_tf.data.inspection import inspect_dataset

    if not needs_inspection(config):
        config.require_resolved(f"the {config.data.dataset} layout")
        return config, None
    root = data_root if data_root is not None else config.data.root
    if root is None:
        raise ValueError("the folder layout (your own data set) needs its folder: give "
                         "--data_root DIR (data.root)")
    report = inspect_dataset(root, config, workers=workers)
    return report.resolve(config), report


def label_mapping_from_config(config):
    """The `LabelMapping` of an own data set's resolved config (None for the other
    layouts: `load_dataset` then applies the layout's own)."""
    if not needs_inspection(config):
        return None
    config.require_resolved("the label mapping")
    m, d = config.model, config.data
    colors = None
    if d.label_encoding == "colors":
        if m.palette is None:
            raise ValueError("data.label_encoding: colors decodes the RGB masks with "
                             "model.palette; give it (or set it auto)")
        colors = m.palette
    return LabelMapping.from_options(m.num_classes, d.ignore_label, d.zero_is_dontcare, colors)


def dataset_options(config) -> dict:
    """The `load_dataset` (and ``oasis_tf.generate.dataset_label_maps``) arguments that
    read a run's data as its training did: an own data set's ``label_mapping`` and
    ``val_fraction``; ``{}`` for the other layouts."""
    mapping = label_mapping_from_config(config)
    if mapping is None:
        return {}
    return {"label_mapping": mapping, "val_fraction": config.data.val_fraction}
