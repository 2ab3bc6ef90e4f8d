"""oasis_tf.training.hardware: the CPU's native bfloat16 flags and the precision the
demo chooses from them (oasis-demo --precision auto)."""

import pytest

from oasis_tf import demo
from oasis_tf.config import load_config
from oasis_tf.training import hardware

FLAGS_AMX = "fpu vme sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
FLAGS_AVX2 = "fpu vme sse2 avx2 fma"


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                    f"flags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    return path


def test_native_bfloat16_flags(tmp_path):
    assert hardware.native_bfloat16_flags(_cpuinfo(tmp_path, FLAGS_AMX)) == [
        "amx_bf16", "avx512_bf16"]
    assert hardware.native_bfloat16_flags(_cpuinfo(tmp_path, FLAGS_AVX2)) == []
    assert hardware.native_bfloat16_flags(tmp_path / "missing") is None
    assert "avx2" in hardware.cpu_flags(_cpuinfo(tmp_path, FLAGS_AVX2))


def test_choose_cpu_precision(tmp_path):
    policy, reason = hardware.choose_cpu_precision(cpuinfo=_cpuinfo(tmp_path, FLAGS_AMX))
    assert policy == "mixed_bfloat16" and "amx_bf16" in reason and "natively" in reason
    policy, reason = hardware.choose_cpu_precision(cpuinfo=_cpuinfo(tmp_path, FLAGS_AVX2))
    assert policy == "float32" and "emulated" in reason
    policy, reason = hardware.choose_cpu_precision(cpuinfo=tmp_path / "missing")
    assert policy == "float32" and "could not read" in reason
    assert hardware.choose_cpu_precision("float32", cpuinfo=_cpuinfo(tmp_path, FLAGS_AMX)) \
        == ("float32", "as requested")


def test_demo_precision_choice_respects_the_override_and_the_flag(monkeypatch, tmp_path):
    cfg = load_config("synthetic", overrides=["train.mixed_precision=float32"])
    assert demo.choose_precision("auto", cfg, ["train.mixed_precision=float32"])[0] == "float32"
    assert demo.choose_precision("mixed_bfloat16", cfg) == (
        "mixed_bfloat16", "as requested (--precision)")
    cpuinfo = _cpuinfo(tmp_path, FLAGS_AVX2)
    real = hardware.choose_cpu_precision
    monkeypatch.setattr(hardware, "choose_cpu_precision",
                        lambda requested, default: real(requested, default, cpuinfo))
    import tensorflow as tf
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: the demo keeps the preset's policy")
    assert demo.choose_precision("auto", cfg)[0] == "float32"


def test_training_in_emulated_bfloat16_is_warned_about(tmp_path):
    (tmp_path / "avx2").mkdir()
    (tmp_path / "amx").mkdir()
    avx2, amx = _cpuinfo(tmp_path / "avx2", FLAGS_AVX2), _cpuinfo(tmp_path / "amx", FLAGS_AMX)
    message = hardware.emulated_bfloat16_warning("mixed_bfloat16", False, avx2)
    assert "emulates" in message and "train.mixed_precision=float32" in message
    assert hardware.emulated_bfloat16_warning("mixed_bfloat16", False, amx) is None
    assert hardware.emulated_bfloat16_warning("mixed_bfloat16", True, avx2) is None
    assert hardware.emulated_bfloat16_warning("float32", False, avx2) is None
    assert hardware.emulated_bfloat16_warning("mixed_bfloat16", False, tmp_path / "none") is None


def test_importing_oasis_tf_gives_the_cpu_the_bfc_allocator():
    """oasis_tf sets TF_CPU_ALLOCATOR_USE_BFC before TensorFlow's first op (the test
    session imports it first, as a script does); only BFC keeps allocator statistics."""
    import os

    import tensorflow as tf

    if os.environ["TF_CPU_ALLOCATOR_USE_BFC"] != "true":
        pytest.skip("TF_CPU_ALLOCATOR_USE_BFC was set to something else before oasis_tf")
    tf.constant([1.0]) * 2.0
    assert tf.config.experimental.get_memory_info("CPU:0")["peak"] > 0
