"""A run's config against its data: the "auto" values found, the data checked up front.

    config, report = resolve_config(load_config("folder"), "data/my_set")
    ds = load_dataset("folder", root, split="val", ..., **dataset_options(config))

`oasis_tf.training.train` calls `resolve_config` before it builds anything, so a bad
data set stops the run with one line per bad file (`DatasetProblemsError`) instead
of an error from inside the traced step.
"""

from __future__ import annotations

from oasis_tf.data.label_mapping import LabelMapping


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
    """The `load_dataset` (and ``oasis_tf.inference.dataset_label_maps``) arguments that
    read a run's data as its training did: an own data set's ``label_mapping`` and
    ``val_fraction``; ``{}`` for the other layouts."""
    mapping = label_mapping_from_config(config)
    if mapping is None:
        return {}
    return {"label_mapping": mapping, "val_fraction": config.data.val_fraction}


def with_data_root(config, data_root=None):
    """``config`` with the absolute data set folder it reads in ``data.root``:
    ``data_root`` where given, else ``config.data.root``; the synthetic layout defaults
    to ``default_synthetic_root()``. Unchanged when no folder is known."""
    import dataclasses
    import os

    root = data_root if data_root is not None else config.data.root
    if root is None and config.data.dataset == "synthetic":
        from oasis_tf.data.pipeline import default_synthetic_root

        root = default_synthetic_root()
    if root is None:
        return config
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    return dataclasses.replace(config, data=dataclasses.replace(config.data, root=root))


def model_data(config_path=None, dataset=None, data_root=None):
    """``(layout, root, options)``: the data a trained model is evaluated or sampled on.

    ``dataset`` / ``data_root`` where given, else the run's ``config.yaml`` (its
    ``data.dataset`` and ``data.root``), else the synthetic data set at its default
    place; ``options`` are the ``load_dataset`` arguments that read the run's own data
    as its training did (``dataset_options``; none for another data set).

    Args:
        config_path: the run's ``config.yaml`` (``info["config"]`` of
            ``oasis_tf.inference.load_generator``), or None.
        dataset: a layout name, or None.
        data_root: a data set folder, or None.

    Raises:
        ValueError: no folder is known for a layout that needs one.
    """
    from oasis_tf.config import OASISConfig, load_config

    config = load_config(config_path) if config_path else None
    if config is not None and dataset in (None, config.data.dataset):
        layout, options = config.data.dataset, dataset_options(config)
    else:
        layout, options = dataset or "synthetic", {}
        config = OASISConfig.from_dict({"data": {"dataset": layout}})
    root = with_data_root(config, data_root).data.root
    if root is None:
        raise ValueError(f"--data_root is required for the {layout} layout")
    return layout, root, options
