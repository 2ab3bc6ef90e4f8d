"""tools/bench_official.py from the command line, without an official checkout or torch:
its argument checks, the configurations it accepts and the official ``opt`` it builds
(``--print_opt``). The benchmark itself needs a checkout of boschresearch/OASIS."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "bench_official.py"
CLONE = "git clone https://github.com/boschresearch/OASIS"
NEEDED_FILES = ("models/generator.py", "models/discriminator.py", "models/norms.py",
                "models/losses.py", "models/models.py")


def _fake_checkout(root, files=NEEDED_FILES):
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


def _run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True,
                          text=True, timeout=60, env=env, cwd=cwd)


def _opts(proc):
    assert proc.returncode == 0, proc.stderr
    return {o["config"]: o for o in map(json.loads, proc.stdout.splitlines())}


def test_missing_root_exits_with_the_message(tmp_path):
    for args in ((), ("--official_root", "")):
        proc = _run("--config", "small", "--iters", "1", *args, cwd=tmp_path)
        assert proc.returncode == 2
        assert "--official_root is required" in proc.stderr and CLONE in proc.stderr
        assert proc.stdout == ""


def test_nonexistent_root_names_the_path(tmp_path):
    missing = tmp_path / "no_such_checkout"
    proc = _run("--official_root", missing)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert str(missing) in proc.stderr and CLONE in proc.stderr


def test_root_without_generator_names_the_path(tmp_path):
    root = _fake_checkout(tmp_path / "OASIS", ["models/discriminator.py", "README.md"])
    proc = _run("--official_root", root)
    assert proc.returncode == 2 and "models/generator.py" in proc.stderr
    assert str(root) in proc.stderr and CLONE in proc.stderr


def test_configurations_are_those_the_official_discriminator_can_build(tmp_path):
    """tools/bench.py's configurations with the official discriminator width (128): the
    tiny one (width 4) is refused by name."""
    root = _fake_checkout(tmp_path / "OASIS")
    opts = _opts(_run("--official_root", root, "--config", "small,ade20k", "--print_opt"))
    assert sorted(opts) == ["ade20k", "small"]
    assert (opts["small"]["crop_size"], opts["small"]["channels_G"]) == (64, 16)
    proc = _run("--official_root", root, "--config", "tiny")
    assert proc.returncode == 2 and "tiny" in proc.stderr


def test_options_change_the_named_configuration_and_the_official_opt(tmp_path):
    root = _fake_checkout(tmp_path / "OASIS")
    opt = _opts(_run("--official_root", root, "--config", "cityscapes_gpu", "--batch", "2",
                     "--image_size", "64x128", "--num_classes", "7", "--device", "cuda",
                     "--print_opt"))["cityscapes_gpu"]
    # the official generator: width from crop_size, height from the aspect ratio
    assert (opt["crop_size"], opt["aspect_ratio"], opt["batch_size"]) == (128, 2.0, 2)
    assert (opt["semantic_nc"], opt["label_nc"], opt["gpu_ids"]) == (7, 6, "0")
    assert (opt["lr_g"], opt["lambda_labelmix"], opt["EMA_decay"]) == (4e-4, 5.0, 0.999)
    ade = _opts(_run("--official_root", root, "--config", "ade20k_gpu",
                     "--print_opt"))["ade20k_gpu"]
    assert (ade["batch_size"], ade["crop_size"], ade["aspect_ratio"], ade["semantic_nc"]) == (
        8, 256, 1.0, 151)
    assert (ade["lr_g"], ade["lambda_labelmix"], ade["EMA_decay"], ade["gpu_ids"]) == (
        1e-4, 10.0, 0.9999, "-1")
    proc = _run("--official_root", root, "--image_size", "64x", "--print_opt")
    assert proc.returncode == 2 and "image_size" in proc.stderr


def test_it_runs_without_torch_and_tensorflow(tmp_path):
    """Checking the arguments and building the ``opt`` import neither torch nor TensorFlow
    (nor oasis_tf, which imports TensorFlow): both are replaced by modules that fail."""
    poison = tmp_path / "poison"
    poison.mkdir()
    for name in ("torch", "tensorflow", "oasis_tf"):
        (poison / f"{name}.py").write_text(f"raise ImportError('{name} was imported')\n")
    root = _fake_checkout(tmp_path / "OASIS")
    env = {"PYTHONPATH": str(poison), "PATH": "/usr/bin:/bin"}
    opts = _opts(_run("--official_root", root, "--config", "small", "--print_opt", env=env))
    assert list(opts) == ["small"]
    proc = _run("--official_root", tmp_path / "missing", env=env)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
