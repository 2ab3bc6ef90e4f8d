"""Benchmark OASIS training and generation; prints one JSON object per case.

    python tools/bench.py --config small --precision float32,mixed_bfloat16 --xla false,true
    python tools/bench.py --config ade20k --iters 3 --warmup 1 --gen_iters 3
    python -m oasis_tf.cli.bench --config tiny --iters 2     # the same, installed
    # both codes side by side in one run, with the machine's bfloat16 advantage
    python tools/bench.py --config small,ade20k --precision float32,mixed_bfloat16 \
        --official_root /path/to/OASIS

Each case (configuration x precision policy x XLA) runs in its own process (the
peak memory of one case is not mixed with another's) and reports:

* ``sec_per_iter``: median seconds of one full training iteration (G step, D step,
  EMA) over ``--iters`` iterations after ``--warmup`` (tracing/compiling excluded);
* ``gen_images_per_sec``: generator images/s (inference mode, batch of the
  configuration), median over ``--gen_iters`` after one warm-up call;
* ``peak_memory_mb``: host peak RSS (``resource.getrusage`` maxrss) on CPU, or
  ``tf.config.experimental.get_memory_info(...)["peak"]`` on a GPU;
* ``memory``: where the memory goes (MB): ``rss_import`` (RSS after importing
  TensorFlow, Keras and oasis_tf), ``rss_built`` (+ the networks and both
  optimizers), ``rss_traced`` (+ the traced training step: the Python graph),
  ``rss_after_warmup`` (+ the runtime's optimised graph and kernels after the
  first iterations); and, from TensorFlow's allocator (the device's tensors
  only: no graph, no Python), ``tensors_state`` (live tensors between
  iterations: variables, moments, EMA) and ``tensors_peak_iter`` (peak of
  live tensors during the timed iterations).

Named configurations:

* ``small``: 151 classes, 64x64, generator width 16, official discriminator
  (base 128), batch 4;
* ``ade20k``: the ADE20K paper configuration, 256x256, width 64, batch 1;
* ``ade20k_gpu``: the paper's ADE20K training on a GPU: 151 classes, 256x256,
  width 64, batch 8 per GPU (32 on 4 GPUs);
* ``cityscapes_gpu``: the paper's Cityscapes training on a GPU: 35 classes,
  256x512, width 64, batch 5 per GPU (20 on 4 GPUs).

``--batch``, ``--image_size`` (``256`` or ``256x512``) and ``--num_classes`` change
those of the named configuration. Each result also has ``train_images_per_sec``
(batch / ``sec_per_iter``), ``num_classes`` and, on a GPU, ``device_name`` and
``peak_device_memory_mb`` (the allocator's peak over the timed iterations and
generator calls; the same number as ``peak_memory_mb`` there). tools/gpu_bench.sh
runs the GPU configurations side by side with the official code.

Random inputs; weights as initialised (speed does not depend on them). Every case runs
with ``--threads`` TensorFlow threads (intra- and inter-op; default 2, as the official
benchmark's ``torch.set_num_threads``).

The machine (first line, ``{"machine": ...}``): the CPU's model and native bfloat16
flags, and its float32 and bfloat16 matmul rates (GFLOP/s of a 2048x2048 matmul with
``--threads`` threads: one warm-up, best of 5, the best of 3 such trials, as the rate
of a shared machine varies from minute to minute) and their ratio, the hardware's
bfloat16 advantage. ``--nomatmul`` skips it.

With ``--official_root`` (a checkout of boschresearch/OASIS; needs torch and this
checkout's ``tools/bench_official.py``) the official code runs each configuration first
(float32, its only precision) and every case of ours gets ``vs_official``: training
and generation speed-ups and the peak-RSS ratio. For every configuration measured in
float32 and mixed_bfloat16 a ``{"summary": ...}`` line gives the fraction of the
hardware's bfloat16 advantage the code turns into speed: (bfloat16 speed-up /
float32 speed-up) / (bfloat16 matmul rate / float32 matmul rate), for training and
for generation (1 = all of it).

``--memory_profile`` adds ``memory_profile``: the live tensors at the peak of one
training iteration, grouped by the op scope that allocated them (each network call,
``gradient_tape`` = the backward passes, the optimizers; the numbered suffixes
count calls in the traced step: G update ``oasis_generator_1`` /
``oasis_discriminator_1``, D update ``oasis_generator_3``, D on fake / real / mixed
``oasis_discriminator_3`` / ``_5`` / ``_7``), plus what was live before the
iteration (variables, moments, EMA). It needs TensorFlow's BFC allocator on the
CPU (``TF_CPU_ALLOCATOR_USE_BFC=true``, set for that case's process), which
reports every allocation to the profiler; buffers that become a variable's new
value (Adam's moments, the EMA, the weights) count under the scope that made them.

``--profile`` adds ``profile``: the time per training iteration spent in each
TensorFlow op type (summed over threads, from a ``tf.profiler`` trace of 2
iterations; the trace is kept under ``--profile_dir``), largest first, e.g. to see
whether the convolutions (``_MklNativeConv2D*``) already take nearly all the time.
"""

import json
import os
import subprocess
import sys

from absl import flags

from oasis_tf.cli import common
from oasis_tf.cli.standalone import CONFIGS, height_width, peak_rss_mb, resolve_config

FLAGS = common.new_flags()
flags.DEFINE_list("config", ["small"], f"Named configurations: {', '.join(CONFIGS)}.",
                  flag_values=FLAGS)
common.define_batch(FLAGS, None, "Batch size instead of the configuration's.")
common.define_image_size(FLAGS, "Image size N or HxW instead of the configuration's.")
common.define_num_classes(FLAGS, "Classes (the don't-care class 0 included) instead of the "
                          "configuration's.")
common.define_precision(FLAGS, ["float32"], "Precision policies to run", several=True)
flags.DEFINE_list("xla", ["false"], "XLA (jit_compile) settings to run: false, true.",
                  flag_values=FLAGS)
flags.DEFINE_integer("iters", 10, "Timed training iterations.", flag_values=FLAGS)
flags.DEFINE_integer("warmup", 2, "Untimed training iterations first (tracing, compiling).",
                     flag_values=FLAGS)
flags.DEFINE_integer("gen_iters", 10, "Timed generator calls.", flag_values=FLAGS)
common.define_output(FLAGS, "Also append the JSON lines to this file.")
flags.DEFINE_bool("profile", False, "Add a per-op-type profile of 2 training iterations.",
                  flag_values=FLAGS)
flags.DEFINE_string("profile_dir", "/tmp/oasis_tf_bench_profile", "Where --profile writes "
                    "the tf.profiler trace (viewable in TensorBoard's profile plugin).",
                    flag_values=FLAGS)
flags.DEFINE_bool("memory_profile", False, "Add the live tensors at the peak of one "
                  "training iteration, by scope (CPU: runs the case with the BFC allocator).",
                  flag_values=FLAGS)
flags.DEFINE_integer("threads", 2, "TensorFlow intra- and inter-op threads of every case "
                     "and of the matmul rate.", lower_bound=1, flag_values=FLAGS)
flags.DEFINE_bool("matmul", True, "Measure the machine's float32 and bfloat16 matmul rates "
                  "first.", flag_values=FLAGS)
flags.DEFINE_string("official_root", None, "A checkout of the official OASIS code: run it "
                    "too (tools/bench_official.py) and compare.", flag_values=FLAGS)
flags.DEFINE_bool("child", False, "Internal: run one case in this process.", flag_values=FLAGS)
flags.DEFINE_bool("child_matmul", False, "Internal: measure the matmul rates in this "
                  "process.", flag_values=FLAGS)


def _peak_memory_mb():
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return peak_rss_mb()


def _rss_mb():
    """Current resident set size in MB (Linux /proc), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def _tensor_memory(device):
    """(current, peak) MB of TensorFlow's allocator on ``device``, or (None, None)."""
    import tensorflow as tf

    try:
        info = tf.config.experimental.get_memory_info(device)
    except (ValueError, RuntimeError):
        return None, None
    return round(info["current"] / 2**20, 1), round(info["peak"] / 2**20, 1)


def _trace(step, batch, logdir, iterations):
    """Runs ``iterations`` steps under ``tf.profiler``; returns (path, XSpace)."""
    import glob

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    tf.profiler.experimental.start(logdir)
    for _ in range(iterations):
        float(step(batch)["loss_d"])
    tf.profiler.experimental.stop()
    path = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    return path, space


def profile_memory(step, batch, logdir, top=14):
    """Live tensors (MB, requested sizes) at the allocator's peak during one training
    iteration, grouped by the first scope of the op that allocated them."""
    import collections

    path, space = _trace(step, batch, logdir, 1)
    events = []
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                kind = names.get(event.metadata_id, "")
                if kind not in ("MemoryAllocation", "MemoryDeallocation"):
                    continue
                stats = {}
                for stat in event.stats:
                    value = (stat.str_value or stat.int64_value or stat.uint64_value
                             or stat.double_value)
                    if stat.ref_value:
                        value = stat_names.get(stat.ref_value, value)
                    stats[stat_names.get(stat.metadata_id, "")] = value
                events.append((line.timestamp_ns * 1000 + event.offset_ps, kind, stats))
    if not events:
        return {"trace": path, "error": "no allocation events (the BFC allocator is "
                                         "needed: TF_CPU_ALLOCATOR_USE_BFC=true)"}
    events.sort(key=lambda e: e[0])
    live, peak, at_peak = {}, -1, {}
    for _, kind, stats in events:
        if kind == "MemoryAllocation":
            live[stats.get("addr")] = stats
        else:
            live.pop(stats.get("addr"), None)
        if stats.get("bytes_allocated", 0) > peak:
            peak, at_peak = stats["bytes_allocated"], dict(live)
    by_scope = collections.Counter()
    for stats in at_peak.values():
        scope = str(stats.get("tf_op", "?")).split("/")[0]
        by_scope[scope] += stats.get("requested_bytes") or stats.get("allocation_bytes", 0)
    in_iteration = sum(by_scope.values())
    return {"trace": path, "peak_mb": round(peak / 2**20, 1),
            "before_iteration_mb": round((peak - in_iteration) / 2**20, 1),
            "by_scope_mb": {k: round(v / 2**20, 1) for k, v in by_scope.most_common(top)
                            if v >= 0.05 * 2**20}}


def profile_op_types(step, batch, logdir, iterations=2, top=12):
    """Milliseconds per iteration by op type (summed over threads), largest first."""
    import collections

    path, space = _trace(step, batch, logdir, iterations)
    per_type = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # op events are "<node name>:<op type>"; skip executor/runtime events
                if ":" in name and not name.startswith(("__", "Executor", "Eager")):
                    per_type[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9
    for runtime in ("Process", "Run"):
        per_type.pop(runtime, None)
    total = sum(per_type.values())
    rows = [{"op": op, "ms_per_iter": round(ms / iterations, 1),
             "share": round(ms / total, 3)} for op, ms in per_type.most_common(top)]
    return {"trace": path, "op_ms_per_iter_total": round(total / iterations, 1),
            "top_ops": rows}


def _gpu_name():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    try:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name")
    except (ValueError, RuntimeError):
        return None


def run_case(name, policy, xla, iters, warmup, gen_iters, profile_dir=None,
             memory_profile_dir=None, config=None):
    """One case in this process; returns the result dict.

    Args:
        config: the configuration dict (default ``CONFIGS[name]``; see
            ``resolve_config``).
    """
    import statistics
    import time

    import keras
    import numpy as np
    import tensorflow as tf

    import oasis_tf
    from oasis_tf.training import precision

    memory = {"rss_import": _rss_mb()}
    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    c = config or CONFIGS[name]
    keras.utils.set_random_seed(0)
    with precision.policy_scope(policy):
        g = oasis_tf.OASISGenerator(num_classes=c["num_classes"], image_size=c["image_size"],
                                    base_channels=c["g_channels"], z_dim=64)
        d = oasis_tf.OASISDiscriminator(num_classes=c["num_classes"],
                                        base_channels=c["d_channels"])
        model = oasis_tf.OASIS(g, d)
    model.compile(jit_compile=xla)
    rng = np.random.default_rng(0)
    b, s = c["batch"], c["image_size"]
    h, w = height_width(s)
    coarse = rng.integers(0, c["num_classes"], (b, h // 8, w // 8))
    batch = dict(image=tf.constant(rng.uniform(-1, 1, (b, h, w, 3)).astype(np.float32)),
                 label=tf.constant(np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32)))
    memory["rss_built"] = _rss_mb()
    step = tf.function(model.train_step, jit_compile=xla)
    start = time.perf_counter()
    step.get_concrete_function(batch)
    memory["rss_traced"] = _rss_mb()
    for _ in range(max(warmup, 1)):
        float(step(batch)["loss_d"])
    warmup_s = time.perf_counter() - start
    memory["rss_after_warmup"] = _rss_mb()
    memory["tensors_state"], _ = _tensor_memory(device)
    try:
        tf.config.experimental.reset_memory_stats(device)
    except (ValueError, RuntimeError):
        pass
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        float(step(batch)["loss_d"])  # the float() waits for the step
        times.append(time.perf_counter() - t)
    memory["tensors_peak_iter"] = _tensor_memory(device)[1]

    gen = tf.function(lambda label, noise: model.generator(
        {"label": label, "noise": noise}, training=False), jit_compile=xla)
    noise = tf.constant(rng.standard_normal((b, 64)).astype(np.float32))
    gen(batch["label"], noise).numpy()
    gen_times = []
    for _ in range(gen_iters):
        t = time.perf_counter()
        gen(batch["label"], noise).numpy()
        gen_times.append(time.perf_counter() - t)
    gen_median = statistics.median(gen_times)
    profile = profile_op_types(step, batch, profile_dir) if profile_dir else None
    memory_profile = (profile_memory(step, batch, memory_profile_dir)
                      if memory_profile_dir else None)
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    sec_per_iter = statistics.median(times)
    return {"config": name, "precision": policy, "xla": bool(xla), "batch": b,
            "image_size": s if isinstance(s, int) else list(s),
            "num_classes": c["num_classes"], "sec_per_iter": round(sec_per_iter, 4),
            "train_images_per_sec": round(b / sec_per_iter, 3),
            "sec_per_iter_min": round(min(times), 4), "iters": iters,
            "warmup_sec": round(warmup_s, 1),
            "gen_images_per_sec": round(b / gen_median, 3),
            "peak_memory_mb": round(_peak_memory_mb(), 1), "memory": memory,
            "device": "GPU" if on_gpu else "CPU",
            **({"device_name": _gpu_name(), "peak_device_memory_mb": round(
                _peak_memory_mb(), 1)} if on_gpu else {}),
            "threads": tf.config.threading.get_intra_op_parallelism_threads(),
            **({"profile": profile} if profile else {}),
            **({"memory_profile": memory_profile} if memory_profile else {})}


def _set_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    tf.config.threading.set_inter_op_parallelism_threads(int(threads))


def matmul_rates(size=2048, repeats=5, trials=3):
    """GFLOP/s of a ``size`` x ``size`` matmul in float32 and in bfloat16 (each: one
    warm-up, the best of ``repeats``; the best of ``trials`` such measurements)."""
    import time

    import tensorflow as tf

    a = tf.random.stateless_normal([size, size], seed=[0, 1])
    b = tf.random.stateless_normal([size, size], seed=[0, 2])
    flops = 2.0 * size ** 3
    rates = {}
    for dtype in (tf.float32, tf.bfloat16):
        x, y = tf.cast(a, dtype), tf.cast(b, dtype)
        best = float("inf")
        for _ in range(trials):
            float(tf.reduce_sum(tf.matmul(x[:8], y)))  # warm-up
            for _ in range(repeats):
                start = time.perf_counter()
                float(tf.matmul(x, y)[0, 0])  # the float() waits for the matmul
                best = min(best, time.perf_counter() - start)
        rates[dtype.name] = round(flops / best / 1e9, 1)
    return rates


def machine():
    """The CPU model, its native bfloat16 flags and (``--matmul``) the matmul rates."""
    from oasis_tf.training import hardware

    info = {"cpu": _cpu_model(), "native_bfloat16_flags": hardware.native_bfloat16_flags(),
            "threads": FLAGS.threads}
    if FLAGS.matmul:
        rates = _run_child(["--child_matmul"], {})
        if "error" in rates:
            info["matmul_error"] = rates["error"]
        else:
            info.update(matmul_gflops_float32=rates["float32"],
                        matmul_gflops_bfloat16=rates["bfloat16"],
                        bfloat16_matmul_ratio=round(rates["bfloat16"] / rates["float32"], 3))
    return info


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _run_child(args, env_extra, command=None):
    """The ``BENCH`` JSON line of a child process (``{"error": ...}`` when it has none)."""
    cmd = command or [sys.executable, "-m", "oasis_tf.cli.bench", "--threads",
                      str(FLAGS.threads)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env_extra)
    proc = subprocess.run(cmd + args, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr or proc.stdout)[-1500:]}
    return json.loads(lines[-1][len("BENCH "):])


def _official(name, config):
    """The official code's record of configuration ``name`` (tools/bench_official.py)."""
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "bench_official.py"
    if not tool.is_file():
        raise common.UsageError("--official_root needs a checkout of oasis_tf: its "
                                "tools/bench_official.py runs the official code")
    size = config["image_size"]
    args = ["--child", "--official_root", FLAGS.official_root, "--config", name,
            "--iters", str(FLAGS.iters), "--warmup", str(FLAGS.warmup),
            "--gen_iters", str(FLAGS.gen_iters), "--threads", str(FLAGS.threads),
            "--batch", str(config["batch"]), "--num_classes", str(config["num_classes"]),
            "--image_size", str(size) if isinstance(size, int) else f"{size[0]}x{size[1]}"]
    return _run_child(args, {}, command=[sys.executable, str(tool)])


def _versus(ours, official):
    """Speed-ups and the memory ratio of one of our records over the official's."""
    if "error" in ours or official is None or "error" in official:
        return None
    return {"train_speedup": round(official["sec_per_iter"] / ours["sec_per_iter"], 3),
            "gen_speedup": round(ours["gen_images_per_sec"] / official["gen_images_per_sec"], 3),
            "peak_rss_ratio": round(ours["peak_memory_mb"] / official["peak_memory_mb"], 3)}


def summary(name, xla, results, machine_info):
    """The fraction of the bfloat16 matmul advantage that training and generation turn
    into speed, for one configuration measured in float32 and mixed_bfloat16."""
    f32, bf16 = results.get("float32"), results.get("mixed_bfloat16")
    ratio = machine_info.get("bfloat16_matmul_ratio")
    if f32 is None or bf16 is None or "error" in f32 or "error" in bf16 or not ratio:
        return None
    train = f32["sec_per_iter"] / bf16["sec_per_iter"]
    gen = bf16["gen_images_per_sec"] / f32["gen_images_per_sec"]
    return {"config": name, "xla": xla, "bfloat16_matmul_ratio": ratio,
            "train_bfloat16_over_float32": round(train, 3),
            "gen_bfloat16_over_float32": round(gen, 3),
            "train_fraction_of_bfloat16_advantage": round(train / ratio, 3),
            "gen_fraction_of_bfloat16_advantage": round(gen / ratio, 3)}


def _emit(record):
    line = json.dumps(record)
    print(line, flush=True)
    if FLAGS.output:
        with open(FLAGS.output, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def main(argv):
    common.reject_arguments(argv)
    try:
        configs = {name: resolve_config(name, FLAGS.batch, FLAGS.image_size,
                                        FLAGS.num_classes) for name in FLAGS.config}
    except ValueError as error:
        raise common.UsageError(str(error)) from None
    xla_values = [v.lower() in ("1", "true", "yes", "on") for v in FLAGS.xla]
    if FLAGS.child_matmul or FLAGS.child:
        _set_threads(FLAGS.threads)  # before any other TensorFlow op
    if FLAGS.child_matmul:
        print("BENCH " + json.dumps(matmul_rates()), flush=True)
        return
    if FLAGS.child:
        name = FLAGS.config[0]
        result = run_case(name, FLAGS.precision[0], xla_values[0], FLAGS.iters,
                          FLAGS.warmup, FLAGS.gen_iters,
                          profile_dir=FLAGS.profile_dir if FLAGS.profile else None,
                          memory_profile_dir=(FLAGS.profile_dir + "-memory"
                                              if FLAGS.memory_profile else None),
                          config=configs[name])
        print("BENCH " + json.dumps(result), flush=True)
        return
    machine_info = machine()
    _emit({"machine": machine_info})
    for name, config in configs.items():
        official = None
        if FLAGS.official_root:
            official = _official(name, config)
            _emit(official)
        for xla in xla_values:
            results = {}
            for policy in FLAGS.precision:
                args = ["--child", "--config", name, "--precision", policy,
                        "--xla", str(xla).lower(), "--iters", str(FLAGS.iters),
                        "--warmup", str(FLAGS.warmup), "--gen_iters", str(FLAGS.gen_iters),
                        f"--profile={str(FLAGS.profile).lower()}",
                        f"--memory_profile={str(FLAGS.memory_profile).lower()}",
                        "--profile_dir", os.path.join(FLAGS.profile_dir,
                                                      f"{name}-{policy}-xla{int(xla)}")]
                args += [f"--{key}={value}" for key, value in (
                    ("batch", FLAGS.batch), ("image_size", FLAGS.image_size),
                    ("num_classes", FLAGS.num_classes)) if value is not None]
                # the CPU allocator reports allocations to the profiler only with BFC
                env = {"TF_CPU_ALLOCATOR_USE_BFC": "true"} if FLAGS.memory_profile else {}
                result = _run_child(args, env)
                if "error" in result:
                    result = {"config": name, "precision": policy, "xla": xla, **result}
                versus = _versus(result, official)
                if versus is not None:
                    result["vs_official"] = versus
                results[policy] = result
                _emit(result)
            line = summary(name, xla, results, machine_info)
            if line is not None:
                _emit({"summary": line})


def run(argv=None):
    """``python -m oasis_tf.cli.bench`` (and ``tools/bench.py``)."""
    return common.run_command("bench", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
