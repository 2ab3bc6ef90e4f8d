"""tools/gpu_bench.sh without a GPU: it says so and exits 0; its case list; a CPU dry
run writes one JSON record per case. Also the --batch/--image_size/--num_classes
options of the benchmarks' named configurations (tools/bench_official.py's own:
tests/test_bench_official.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oasis_tf.cli import standalone

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "gpu_bench.sh"


def _env(**extra):
    env = dict(os.environ, PYTHON=sys.executable, CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("OFFICIAL_ROOT", None)
    env.update(extra)
    return env


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(["bash", str(SCRIPT), "--output", str(out)], capture_output=True,
                          text=True, timeout=300, env=_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no GPU" in proc.stdout and "nothing run" in proc.stdout, proc.stdout
    assert not out.exists()


def test_case_list_is_every_precision_with_and_without_xla_and_the_official():
    proc = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert proc.returncode == 0, proc.stderr
    cases = [tuple(line.split()) for line in proc.stdout.splitlines()]
    want = {("official_pytorch", c, "float32", "false")
            for c in ("ade20k_gpu", "cityscapes_gpu")}
    want |= {("oasis_tf", c, p, x) for c in ("ade20k_gpu", "cityscapes_gpu")
             for p in ("float32", "mixed_float16", "mixed_bfloat16") for x in ("false", "true")}
    assert len(cases) == len(set(cases)) == 14 and set(cases) == want
    # no XLA case before the last non-XLA one: the budget cuts XLA first
    xla = [c[3] == "true" for c in cases]
    assert xla == sorted(xla)


@pytest.mark.slow
def test_cpu_dry_run_writes_one_record_per_case(tmp_path):
    """Cityscapes' aspect (a 64x128 stand-in), float32 without XLA: our case runs, the
    official one is recorded as skipped with the reason (no checkout given)."""
    out = tmp_path / "bench.json"
    env = _env(GPU_BENCH_CONFIGS="cityscapes_gpu", GPU_BENCH_PRECISIONS="float32",
               GPU_BENCH_XLA="false")
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu_dry_run", "--output", str(out)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no official checkout" in proc.stdout and "git clone" in proc.stdout
    report = json.loads(out.read_text())
    assert report["dry_run"] is True
    cases = {c["case"]: c for c in report["cases"]}
    assert sorted(cases) == ["oasis_tf/cityscapes_gpu/float32/xla=false",
                             "official_pytorch/cityscapes_gpu/float32/xla=false"]
    official = cases["official_pytorch/cityscapes_gpu/float32/xla=false"]
    assert "no official checkout" in official["skipped"] and "sec_per_iter" not in official
    ours = cases["oasis_tf/cityscapes_gpu/float32/xla=false"]
    assert "error" not in ours, ours
    assert ours["image_size"] == [64, 128] and ours["batch"] == 1
    assert ours["ran_config"] == "tiny" and ours["device"] == "CPU"
    assert ours["train_images_per_sec"] > 0 and ours["gen_images_per_sec"] > 0
    assert ours["peak_memory_mb"] > 0


def test_bench_options_change_the_named_configuration():
    """The named configurations of tools/bench.py and tools/bench_official.py."""
    assert standalone.CONFIGS["ade20k_gpu"]["batch"] == 8
    assert standalone.CONFIGS["ade20k_gpu"]["image_size"] == 256
    assert standalone.CONFIGS["cityscapes_gpu"]["batch"] == 5
    assert tuple(standalone.CONFIGS["cityscapes_gpu"]["image_size"]) == (256, 512)
    c = standalone.resolve_config("cityscapes_gpu", batch=2, image_size="64x128", num_classes=7)
    assert (c["batch"], c["image_size"], c["num_classes"]) == (2, (64, 128), 7)
    assert c["g_channels"] == standalone.CONFIGS["cityscapes_gpu"]["g_channels"]
    assert standalone.resolve_config("small") == standalone.CONFIGS["small"]
    assert standalone.parse_image_size("96") == 96
    for bad in ("", "x", "64x", "0", "1x2x3"):
        with pytest.raises(ValueError, match="image_size"):
            standalone.parse_image_size(bad)
    with pytest.raises(ValueError, match="batch"):
        standalone.resolve_config("small", batch=0)
    with pytest.raises(ValueError, match="config"):
        standalone.resolve_config("nope")
