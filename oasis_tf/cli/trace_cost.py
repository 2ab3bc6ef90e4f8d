"""What tracing ``OASIS.train_step`` costs: seconds, graph size, where the time goes.

    python tools/trace_cost.py                 # the synthetic preset's model sizes
    python tools/trace_cost.py --repeats 3 --top 20
    python -m oasis_tf.cli.trace_cost                 # the same, installed

Builds the model of ``the synthetic preset`` (12 classes, 64x64, generator width
16, 4 res blocks, discriminator width 32, batch 4), traces ``train_step`` once per
repetition (a fresh ``tf.function`` each time, same model) and prints one JSON
line per repetition: ``trace_s`` (seconds of ``get_concrete_function``), ``ops``
(operations in the traced graph), ``ops_by_type`` (the most frequent types) and
``ops_by_scope`` (by outermost name scope: network calls, gradients, optimizers),
and ``rss_increase_mb`` (resident memory added by the trace; the first repetition's
includes one-time costs).
With ``--top N`` the first repetition runs under cProfile and its N most expensive
functions by cumulative time are printed first. Every test that trains a model and
``make demo`` pay one such trace.
"""

import cProfile
import collections
import io
import json
import os
import pstats
import sys
import time

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
flags.DEFINE_integer("repeats", 1, "Traces to time (fresh tf.function each).", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_integer("top", 0, "Print a cProfile top-N (cumulative) of the first trace.",
                     flag_values=FLAGS)
common.define_batch(FLAGS, 4)


def build(batch):
    """The synthetic-demo-sized OASIS (compiled) and one random batch."""
    import keras
    import numpy as np
    import tensorflow as tf

    import oasis_tf

    keras.utils.set_random_seed(0)
    g = oasis_tf.OASISGenerator(num_classes=12, image_size=64, base_channels=16, z_dim=32,
                                num_res_blocks=4, spade_hidden=32)
    d = oasis_tf.OASISDiscriminator(num_classes=12, base_channels=32)
    model = oasis_tf.OASIS(g, d)
    model.compile()
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 12, (batch, 8, 8))
    data = dict(image=tf.constant(rng.uniform(-1, 1, (batch, 64, 64, 3)).astype(np.float32)),
                label=tf.constant(np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32)))
    return model, data


def _scope(name):
    """The outermost name scope of an op, call counters dropped
    (``oasis_discriminator_3/...`` -> ``oasis_discriminator``)."""
    head = name.split("/")[0]
    base, _, suffix = head.rpartition("_")
    return base if base and suffix.isdigit() else head


def trace_once(model, data, profile=None):
    """Traces ``model.train_step`` into a new graph; returns (seconds, graph)."""
    import tensorflow as tf

    fn = tf.function(model.train_step)
    start = time.perf_counter()
    if profile is not None:
        profile.enable()
    concrete = fn.get_concrete_function(data)
    if profile is not None:
        profile.disable()
    return time.perf_counter() - start, concrete.graph


def _rss_mb():
    """Current resident memory of this process in MB (Linux; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def main(argv):
    common.reject_arguments(argv)
    model, data = build(FLAGS.batch)
    for i in range(FLAGS.repeats):
        profile = cProfile.Profile() if (i == 0 and FLAGS.top > 0) else None
        rss_before = _rss_mb()
        seconds, graph = trace_once(model, data, profile)
        rss_after = _rss_mb()
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(FLAGS.top)
            print(out.getvalue())
        ops = graph.get_operations()
        types = collections.Counter(op.type for op in ops)
        scopes = collections.Counter(_scope(op.name) for op in ops)
        rss = None if rss_before is None else round(rss_after - rss_before)
        print(json.dumps({"repeat": i, "trace_s": round(seconds, 2), "ops": len(ops),
                          "rss_increase_mb": rss,
                          "ops_by_type": dict(types.most_common(12)),
                          "ops_by_scope": dict(scopes.most_common(16))}), flush=True)


def run(argv=None):
    """``python -m oasis_tf.cli.trace_cost`` (and ``tools/trace_cost.py``)."""
    return common.run_command("trace_cost", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
