"""tools/bench.py on the tiny configuration: one case (its child process, where the
measuring happens: the parent that starts it runs in tests/test_gpu_bench.py) with the
timing fields, the per-op-type profile (--profile) and the memory profile; the machine
line, the matmul rates and the bfloat16-advantage summary."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_case_has_the_timings_and_both_profiles(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "oasis_tf.cli.bench", "--child", "--config", "tiny",
         "--iters", "2", "--warmup", "1", "--gen_iters", "2", "--profile", "--memory_profile",
         "--profile_dir", str(tmp_path / "profile")],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO),
                 TF_CPU_ALLOCATOR_USE_BFC="true"))  # as the parent sets it for the profile
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line[len("BENCH "):]) for line in proc.stdout.splitlines()
             if line.startswith("BENCH ")]
    assert len(lines) == 1, proc.stdout[-3000:]
    result = lines[0]
    assert result["threads"] == 2
    assert result["config"] == "tiny" and result["precision"] == "float32"
    assert result["sec_per_iter"] > 0 and result["gen_images_per_sec"] > 0
    assert result["peak_memory_mb"] > 100
    memory = result["memory"]
    assert 100 < memory["rss_import"] <= memory["rss_built"] <= memory["rss_traced"] \
        <= result["peak_memory_mb"]
    assert 0 < memory["tensors_state"] <= memory["tensors_peak_iter"] < result["peak_memory_mb"]
    ops = {row["op"] for row in result["profile"]["top_ops"]}
    assert any("Conv2D" in op for op in ops), ops
    shares = [row["share"] for row in result["profile"]["top_ops"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0001
    assert Path(result["profile"]["trace"]).exists()
    mem = result["memory_profile"]
    assert mem["peak_mb"] > mem["before_iteration_mb"] > 0
    assert "gradient_tape" in mem["by_scope_mb"], mem
    assert any(k.startswith("oasis_generator") for k in mem["by_scope_mb"]), mem
    assert sum(mem["by_scope_mb"].values()) <= mem["peak_mb"] - mem["before_iteration_mb"] + 1


def test_machine_matmul_rates_and_the_bfloat16_summary():
    from oasis_tf.cli import bench

    bench.FLAGS.unparse_flags()
    bench.FLAGS(["bench", "--nomatmul", "--threads", "3"])
    machine = bench.machine()
    assert machine["threads"] == 3 and machine["cpu"] and "matmul_gflops_float32" not in machine
    assert isinstance(machine["native_bfloat16_flags"], list)

    rates = bench.matmul_rates(size=128, repeats=2, trials=1)
    assert rates["float32"] > 0 and rates["bfloat16"] > 0
    f32 = {"sec_per_iter": 2.0, "gen_images_per_sec": 10.0}
    bf16 = {"sec_per_iter": 1.0, "gen_images_per_sec": 15.0}
    line = bench.summary("small", False, {"float32": f32, "mixed_bfloat16": bf16},
                         {"bfloat16_matmul_ratio": 2.5})
    assert (line["train_bfloat16_over_float32"], line["gen_bfloat16_over_float32"]) == (2.0, 1.5)
    assert (line["train_fraction_of_bfloat16_advantage"],
            line["gen_fraction_of_bfloat16_advantage"]) == (0.8, 0.6)
    assert bench.summary("small", False, {"float32": f32}, {"bfloat16_matmul_ratio": 2.5}) is None
    assert bench._versus({"sec_per_iter": 1.0, "gen_images_per_sec": 4.0, "peak_memory_mb": 900},
                         {"sec_per_iter": 1.5, "gen_images_per_sec": 2.0,
                          "peak_memory_mb": 1000}) == {
        "train_speedup": 1.5, "gen_speedup": 2.0, "peak_rss_ratio": 0.9}
