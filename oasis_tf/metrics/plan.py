"""What an evaluation of a model reads and where its report goes, decided once for the
``oasis-evaluate`` command and any script: the data set (``evaluation_data``) and the
report's default path (``default_report_path``)."""

import dataclasses
import os
import re

from oasis_tf.loading import OFFICIAL_SUFFIXES


def evaluation_data(config_path=None, dataset=None, data_root=None):
    """``(layout, root)`` an evaluation reads.

    ``dataset`` / ``data_root`` where given; else the run's ``config.yaml`` (its
    ``data.dataset`` and ``data.root``); else the synthetic data set at its default
    place. The root is decided as a training run decides it
    (``oasis_tf.training.session.with_data_root``).

    Args:
        config_path: the run's ``config.yaml`` (``info["config"]`` of
            ``oasis_tf.loading.load_generator``), or None.
        dataset: a layout name, or None.
        data_root: a data set folder, or None.

    Raises:
        ValueError: no folder is known for a layout that needs one.
    """
    from oasis_tf.config import OASISConfig, load_config
    from oasis_tf.training.session import with_data_root

    config = load_config(config_path) if config_path else None
    if config is None:
        layout = dataset or "synthetic"
        config = OASISConfig.from_dict({"data": {"dataset": layout}})
    else:
        layout = dataset or config.data.dataset
        if layout != config.data.dataset:  # another data set: the run's folder is not its
            config = dataclasses.replace(config, data=dataclasses.replace(
                config.data, dataset=layout, root=None))
    root = with_data_root(config, data_root, resume=None).data.root
    if root is None:
        raise ValueError(f"--data_root is required for the {layout} layout")
    return layout, root


def default_report_path(model, config_path, split):
    """``<run>/evaluation-<split>.json`` for a run folder, else
    ``evaluation-<model name>-<split>.json`` in the current folder."""
    model_path = os.path.normpath(os.fspath(model))
    if (os.path.isdir(model_path) and config_path
            and os.path.dirname(os.fspath(config_path)) == model_path):
        return os.path.join(model_path, f"evaluation-{split}.json")
    suffixes = "|".join(re.escape(s) for s in (".keras",) + OFFICIAL_SUFFIXES)
    stem = re.sub(rf"({suffixes})$", "", os.path.basename(model_path))
    return f"evaluation-{stem}-{split}.json"
