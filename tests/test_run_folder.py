"""The run folder is the unit a user carries around (issue 12, item 5).

A tiny run is trained with ``--data_root`` (a relative path, from one folder);
``--resume``, ``tools/evaluate.py`` and ``tools/export.py`` then run on the run
folder from another folder without repeating it and read the same files. The
files the tools write follow the umask; ``--dry_run`` leaves no file anywhere.
"""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from oasis_tf.config import load_config
from oasis_tf.training import train
from test_training_run import TINY, _in_memory_dataset_fn, _overrides, _tiny_config

REPO = Path(__file__).resolve().parents[1]
UMASK = 0o027  # files 0640, folders 0750: neither the mkstemp 0600 nor a fixed 0644


def _tool(name, *args, cwd, env=None, timeout=300):
    env = dict(env or os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, str(REPO / "tools" / f"{name}.py"), *args],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                         preexec_fn=lambda: os.umask(UMASK))
    assert out.returncode == 0, f"{name}: " + out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_run_folder_remembers_its_data_and_exports_both_networks(tmp_path):
    from oasis_tf.data import write_synthetic_dataset

    data = tmp_path / "data"
    write_synthetic_dataset(str(data), num_train=16, num_val=4, size=64, seed=0)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    out = _tool("train", "--config", "synthetic", "--data_root", "../data", "--run_dir", "runs",
                "--max_steps", "2", *_overrides(TINY), cwd=first)
    run = Path(first / out.stdout.strip().splitlines()[-1]).resolve()
    assert run.name == "ade20k-0001", run  # the name the tools' --help examples use
    assert load_config(run / "config.yaml").data.root == str(data)
    log = (run / "train.log").read_text()
    # start-up says what it does; the first (tracing) step is timed apart
    assert "tracing the training step" in log and "first step took" in log

    # from another folder, without --data_root: the same files
    _tool("train", "--resume", str(run), "--max_steps", "4", cwd=second)
    log = (run / "train.log").read_text()
    assert "resumed from" in log and "data.root changed" not in log
    report = tmp_path / "report.json"
    _tool("evaluate", "--model", str(run), "--split", "val", "--extractor", "none",
          "--segmenter", "none", "--num_diversity_samples", "0", "--output", str(report),
          cwd=second)
    evaluation = json.loads(report.read_text())
    assert evaluation["data_root"] == str(data) and evaluation["num_images"] == 4

    # the discriminator is in the run folder too, and exports as `segment`
    _tool("export", "--generator", str(run), "--discriminator", str(run), "--export_dir",
          "exports", cwd=second)
    version = second / "exports" / "oasis" / "1"
    assert "segment" in tf.saved_model.load(str(version)).signatures

    # modes follow the umask (mkstemp / mkdtemp would make them 0600 / 0700)
    for path in (run / "generator.keras", run / "discriminator.keras",
                 version / "saved_model.pb", version / "assets" / "oasis_export.json"):
        assert _mode(path) == 0o666 & ~UMASK, (path, oct(_mode(path)))
    for path in (version, version / "variables"):
        assert _mode(path) == 0o777 & ~UMASK, (path, oct(_mode(path)))


def test_changing_the_data_root_on_resume_is_explicit_and_logged(tmp_path):
    config = _tiny_config()
    result = train(config, data_root=tmp_path / "a", runs_root=tmp_path, max_steps=2,
                   console=False, dataset_fn=_in_memory_dataset_fn(), name="x")
    run = Path(result.run_dir)
    assert load_config(run / "config.yaml").data.root == str(tmp_path / "a")
    # a config from elsewhere (root None) does not switch it silently...
    again = train(config, resume=run, max_steps=2, console=False,
                  dataset_fn=_in_memory_dataset_fn())
    assert again.start_step == 2
    assert load_config(run / "config.yaml").data.root == str(tmp_path / "a")
    # ...an explicit data_root does, and says so
    train(config, resume=run, data_root=tmp_path / "b", max_steps=2, console=False,
          dataset_fn=_in_memory_dataset_fn())
    assert load_config(run / "config.yaml").data.root == str(tmp_path / "b")
    assert f"data.root changed from {tmp_path / 'a'} to {tmp_path / 'b'}" in \
        (run / "train.log").read_text()


def test_dry_run_creates_no_file(tmp_path):
    """No file in HOME, the working folder or the temp folder, with no data set
    there yet (the synthetic set goes to a temporary folder, removed at the end).
    KERAS_HOME and MPLCONFIGDIR point elsewhere: importing TensorFlow writes Keras'
    ``~/.keras/keras.json`` and Matplotlib's font cache, their documented config and
    cache, not oasis_tf's."""
    home, cwd, tmp, keras_home, mpl = (tmp_path / n for n in ("home", "cwd", "tmp", "keras",
                                                             "mpl"))
    for folder in (home, cwd, tmp):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "OASIS_TF_DATA"}
    env.update(HOME=str(home), TMPDIR=str(tmp), KERAS_HOME=str(keras_home),
               MPLCONFIGDIR=str(mpl))
    out = _tool("train", "--config", "synthetic", "--dry_run", "--override",
                "train.batch_size=2", "--override", "model.g_channels=2", "--override",
                "model.d_channels=4", "--override", "model.spade_hidden=4", "--override",
                "model.num_res_blocks=2", cwd=cwd, env=env)
    assert "DRY RUN: one step ran" in out.stdout, out.stdout[-2000:]
    assert "writing the synthetic data set to the temporary folder" in out.stdout
    for folder in (home, cwd, tmp):
        assert not list(folder.rglob("*")), (folder, list(folder.rglob("*"))[:5])


def test_import_oasis_tf_reaches_the_subpackages(tmp_path):
    code = ("import oasis_tf\n"
            "for name in ('training', 'data', 'export', 'metrics', 'convert', 'loading'):\n"
            "    assert hasattr(oasis_tf, name), name\n"
            "oasis_tf.training.train, oasis_tf.data.load_dataset\n"
            "oasis_tf.export.export_saved_model, oasis_tf.metrics.fid_from_features\n"
            "import oasis_tf.generate\n"
            "assert oasis_tf.generate.load_generator is oasis_tf.loading.load_generator\n"
            "assert oasis_tf.metrics.load_generator is oasis_tf.loading.load_generator\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"))
    assert out.returncode == 0, out.stderr[-2000:]
