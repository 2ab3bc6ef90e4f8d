"""`pip install oasis_tf` is the whole tool: the wheel built from this checkout, installed
(not editable) into a fresh environment, gives every command, and they run from a folder
outside the checkout with the presets of the installed package. The dry run there also
shows that ``--dry_run`` leaves no file anywhere.

The fresh environment borrows the third-party packages of the test's own environment
(TensorFlow and the rest, through a ``.pth`` path entry, whose own ``.pth`` files, the
editable install of this checkout among them, are not run), so nothing is downloaded.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("oasis-train", "oasis-generate", "oasis-evaluate", "oasis-export",
            "oasis-convert", "oasis-tflite", "oasis-studio", "oasis-demo",
            "oasis-inspect-data", "oasis-serving-client")
# a model that traces in seconds (the dry run builds it and runs one step)
TINY = ["model.g_channels=4", "model.d_channels=4", "model.z_dim=4", "model.num_res_blocks=2",
        "model.spade_hidden=8", "train.batch_size=2"]

pytestmark = pytest.mark.slow


def _run(cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300,
                          **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """``(bin folder, site-packages, environment variables)`` of a fresh environment
    with the wheel installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # what the wheel is built from: the files git would ship
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, source / name if source.exists() else
                     (source.mkdir() or source / name))
    shutil.copytree(REPO / "oasis_tf", source / "oasis_tf",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "--quiet", "-w", tmp / "dist", source])
    wheels = list((tmp / "dist").glob("oasis_tf-*.whl"))
    assert len(wheels) == 1, wheels

    env_dir = tmp / "env"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = Path(_run([env_dir / "bin" / "python", "-c",
                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                     ).stdout.strip())
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "borrowed_dependencies.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", env_dir / "bin" / "python", "install",
          "--no-deps", "--no-index", "--quiet", wheels[0]])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return env_dir / "bin", site, env


def test_every_command_is_installed(environment):
    bin_dir, _, _ = environment
    missing = [c for c in COMMANDS if not (bin_dir / c).is_file()]
    assert not missing, f"not installed: {missing}"


def test_commands_run_outside_the_checkout_with_the_installed_presets(environment,
                                                                        tmp_path):
    """``oasis-generate --help`` and ``oasis-train --config synthetic --dry_run`` from a
    folder outside the checkout. The dry run finds no data set (the synthetic one goes
    to a temporary folder, removed at the end) and leaves no file in HOME, the working
    folder or the temp folder; KERAS_HOME and MPLCONFIGDIR point elsewhere: importing
    TensorFlow writes Keras' ``~/.keras/keras.json`` and Matplotlib's font cache, their
    documented config and cache, not oasis_tf's."""
    bin_dir, site, env = environment
    home, cwd, tmp = (tmp_path / name for name in ("home", "cwd", "tmp"))
    for folder in (home, cwd, tmp):
        folder.mkdir()
    env = {k: v for k, v in env.items() if k != "OASIS_TF_DATA"}
    env.update(HOME=str(home), TMPDIR=str(tmp), KERAS_HOME=str(tmp_path / "keras"),
               MPLCONFIGDIR=str(tmp_path / "mpl"))
    proc = _run([bin_dir / "oasis-generate", "--help"], cwd=cwd, env=env)
    assert proc.stdout.startswith("oasis-generate:")
    assert "    oasis-generate --generator runs/synthetic-0001 --labels" in proc.stdout
    assert "--image_size" in proc.stdout and "--output_dir" in proc.stdout

    proc = _run([bin_dir / "oasis-train", "--config", "synthetic", "--dry_run",
                 *[f"--override={o}" for o in TINY]], cwd=cwd, env=env)
    # the installed package, not the checkout, ran, and found its preset
    assert f"oasis_tf 0.1.0 ({site / 'oasis_tf'})" in proc.stdout, proc.stdout[:2000]
    assert "DRY RUN: one step ran" in proc.stdout
    assert "writing the synthetic data set to the temporary folder" in proc.stdout
    for folder in (home, cwd, tmp):
        assert not list(folder.rglob("*")), (folder, list(folder.rglob("*"))[:5])
