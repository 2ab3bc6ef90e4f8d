"""tools/bench_official.py: argument validation only (no official checkout, no torch
model built; the benchmark itself needs a checkout of boschresearch/OASIS)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "bench_official.py"
CLONE = "git clone https://github.com/boschresearch/OASIS"


@pytest.fixture(scope="module")
def bench_official():
    spec = importlib.util.spec_from_file_location("bench_official", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_checkout(root, files):
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


def test_missing_root_is_a_clear_error(bench_official):
    for value in (None, ""):
        with pytest.raises(ValueError, match="--official_root is required") as info:
            bench_official.check_official_root(value)
        assert CLONE in str(info.value)


def test_nonexistent_root_names_the_path(bench_official, tmp_path):
    missing = tmp_path / "no_such_checkout"
    with pytest.raises(ValueError, match="does not exist") as info:
        bench_official.check_official_root(str(missing))
    assert str(missing) in str(info.value) and CLONE in str(info.value)


def test_root_without_generator_names_the_path(bench_official, tmp_path):
    root = _fake_checkout(tmp_path / "OASIS", ["models/discriminator.py", "README.md"])
    with pytest.raises(ValueError, match="models/generator.py") as info:
        bench_official.check_official_root(str(root))
    assert str(root) in str(info.value) and CLONE in str(info.value)


def test_checkout_layout_is_accepted(bench_official, tmp_path):
    root = _fake_checkout(tmp_path / "OASIS", bench_official.NEEDED_FILES)
    assert bench_official.check_official_root(str(root)) == str(root)
    args = bench_official.parse_args(["--official_root", str(root), "--config", "small,ade20k"])
    assert args.config == ["small", "ade20k"] and args.threads == 2


def test_unknown_config_is_rejected(bench_official, tmp_path, capsys):
    root = _fake_checkout(tmp_path / "OASIS", bench_official.NEEDED_FILES)
    with pytest.raises(SystemExit):
        bench_official.parse_args(["--official_root", str(root), "--config", "tiny"])
    assert "tiny" in capsys.readouterr().err


def test_command_line_without_root_exits_with_the_message(tmp_path):
    """The tool exits (usage error) with the message, without running a benchmark."""
    proc = subprocess.run([sys.executable, str(TOOL), "--config", "small", "--iters", "1"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "--official_root is required" in proc.stderr and CLONE in proc.stderr
    assert proc.stdout == ""


def test_validation_does_not_import_torch():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('b', {str(TOOL)!r})\n"
            "m = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(m)\n"
            "try:\n"
            "    m.parse_args(['--config', 'small'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('torch' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
