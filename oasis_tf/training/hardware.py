"""Which precision policy pays on this machine's CPU.

TensorFlow's CPU kernels (oneDNN) compute bfloat16 convolutions and matrix products
natively where the processor has the AVX-512 BF16 (``avx512_bf16``) or AMX
(``amx_bf16``) instructions; there ``mixed_bfloat16`` trains several times faster than
float32 (README, performance). Elsewhere bfloat16 is emulated and slower than float32.
"""

import os

# /proc/cpuinfo flags of native bfloat16 arithmetic.
NATIVE_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU feature flags of the first processor in ``cpuinfo`` (Linux), as a set;
    None where the file cannot be read or has no "flags" line."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    return set(value.split())
    except OSError:
        return None
    return None


def native_bfloat16_flags(cpuinfo="/proc/cpuinfo"):
    """The flags of ``NATIVE_BFLOAT16_FLAGS`` the CPU has (sorted list; empty when none,
    None when the flags cannot be read)."""
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None
    return sorted(flags.intersection(NATIVE_BFLOAT16_FLAGS))


def choose_cpu_precision(requested="auto", default="float32", cpuinfo="/proc/cpuinfo"):
    """The Keras precision policy to train with on the CPU, and why.

    Args:
        requested: "auto" or a policy name (returned as it is, "as requested").
        default: the policy where "auto" finds no native bfloat16 (the preset's).
        cpuinfo: where the CPU flags are read.

    Returns:
        (policy, reason): "mixed_bfloat16" where the CPU has a native bfloat16 flag,
        else ``default``; the reason names the flags found or why none were.
    """
    if requested != "auto":
        return requested, "as requested"
    found = native_bfloat16_flags(cpuinfo)
    if found is None:
        return default, (f"could not read the CPU flags from {os.fspath(cpuinfo)}; "
                         "bfloat16 may be emulated (slow)")
    if found:
        return "mixed_bfloat16", (f"the CPU computes bfloat16 natively ({', '.join(found)} "
                                  "in its flags)")
    return default, (f"the CPU has none of {', '.join(NATIVE_BFLOAT16_FLAGS)}: bfloat16 "
                     "would be emulated (slower than float32)")


def emulated_bfloat16_warning(policy, on_gpu, cpuinfo="/proc/cpuinfo"):
    """A warning for training in bfloat16 on a CPU that emulates it, or None.

    Args:
        policy: the Keras precision policy the networks compute in.
        on_gpu: whether the networks run on a GPU (then the CPU does not matter).
        cpuinfo: where the CPU flags are read.
    """
    if policy != "mixed_bfloat16" or on_gpu:
        return None
    if native_bfloat16_flags(cpuinfo) != []:  # native, or the flags cannot be read
        return None
    return (f"training in mixed_bfloat16 on a CPU without {' or '.join(NATIVE_BFLOAT16_FLAGS)}: "
            "TensorFlow emulates its bfloat16 convolutions there, about 10x slower than "
            "float32 on an AVX2 CPU (docs/performance.md); "
            "--override train.mixed_precision=float32 is the faster choice")
