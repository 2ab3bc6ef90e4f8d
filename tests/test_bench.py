"""tools/bench.py on the tiny configuration: one JSON line per case with the
timing fields, and the per-op-type profile (--profile)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_prints_one_json_line_per_case_with_a_profile(tmp_path):
    out = tmp_path / "bench.jsonl"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "bench.py"), "--config", "tiny", "--iters", "2",
         "--warmup", "1", "--gen_iters", "2", "--profile", "--memory_profile", "--profile_dir",
         str(tmp_path / "profile"), "--output", str(out)],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and "error" not in lines[0], proc.stdout[-3000:]
    result = lines[0]
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
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines
