"""``tf.distribute`` strategies by name, ``TF_CONFIG`` and the chief.

    strategy = create_strategy("multiworker")   # before any other TensorFlow op
    if is_chief(strategy): ...                   # only the chief writes files

Names:

* ``"default"``: no distribution (one device; the current default strategy);
* ``"mirrored"``: ``MirroredStrategy`` over the local GPUs (or the given
  devices): N GPUs of one machine, synchronous, all-reduce of the gradients;
* ``"multiworker"``: ``MultiWorkerMirroredStrategy`` over M machines (each with
  its GPUs, or its CPU), configured by the standard ``TF_CONFIG`` environment
  variable, e.g. on worker 1 of 2::

      TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                  "task": {"type": "worker", "index": 1}}'

  Without ``TF_CONFIG`` it is a one-worker strategy. Create it at the start of the
  program, before any other TensorFlow op (a TensorFlow requirement).

The chief (``is_chief``) is the task of type "chief", or worker 0 when the
cluster has no "chief" task. Only the chief writes checkpoints, samples,
metrics and TensorBoard events; the other workers write only their own log but
run every step (and every EMA refresh) so all of them hold the same weights.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def tf_config(environ=None):
    """The parsed ``TF_CONFIG`` (a dict; {} when unset or empty)."""
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {text!r}") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object. Received: {text!r}")
    return config


def task_info(strategy=None, environ=None):
    """``(task_type, task_id, cluster)`` of this process: from the strategy's cluster
    resolver when it has one, else from ``TF_CONFIG``; ``(None, 0, {})`` when neither."""
    resolver = getattr(getattr(strategy, "extended", None), "_cluster_resolver", None)
    resolver = getattr(strategy, "cluster_resolver", None) or resolver
    if resolver is not None and getattr(resolver, "task_type", None) is not None:
        spec = resolver.cluster_spec().as_dict() if resolver.cluster_spec() else {}
        return resolver.task_type, int(resolver.task_id or 0), spec
    config = tf_config(environ)
    task = config.get("task", {})
    return task.get("type"), int(task.get("index", 0)), config.get("cluster", {})


def is_chief(strategy=None, environ=None):
    """True for the process that writes files: no cluster, the "chief" task, or
    worker 0 of a cluster without a chief."""
    task_type, task_id, cluster = task_info(strategy, environ)
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def num_workers(strategy=None, environ=None):
    """The number of processes of the job (chief and workers; 1 without a cluster)."""
    _, _, cluster = task_info(strategy, environ)
    return max(1, sum(len(cluster.get(kind, ())) for kind in ("chief", "worker")))


_SUM_FNS = {}


def sum_over_workers(strategy, values):
    """``values`` (a list of ints) added up over the workers of a multi-worker job:
    one small all-reduce that every worker must call at the same point (e.g. after
    each training step). With one worker, ``values`` unchanged and no op.

    Used for decisions all workers must take alike: stop after this step (a signal
    reached one of them), finish a run whose final files are missing."""
    values = [int(v) for v in values]
    if num_workers(strategy) <= 1:
        return values
    fn = _SUM_FNS.get(id(strategy))
    if fn is None:
        @tf.function
        def fn(local):
            per_replica = strategy.run(lambda: tf.identity(local))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        _SUM_FNS[id(strategy)] = fn
    total = fn(tf.constant(values, tf.int32))
    return [int(v) for v in total.numpy()]


def create_strategy(name="default", devices=None, timeout_seconds=None):
    """A ``tf.distribute.Strategy`` from its name.

    Args:
        name: "default", "mirrored" or "multiworker".
        devices: for "mirrored", the devices (default: every local GPU, else the CPU).
        timeout_seconds: for "multiworker", the collective timeout (default: none;
            a worker that dies then blocks the others until they are killed and the
            job is restarted with ``--resume``).
    """
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}. Received: {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def state_digest(model):
    """SHA-256 (hex) of every variable of G, D, the EMA generator and both optimizers
    (this process's copy). Equal digests mean bit-identical training states."""
    h = hashlib.sha256()
    variables = []
    for net in (model.generator, model.discriminator, getattr(model, "ema_generator", None)):
        if net is not None:
            variables += net.weights
    variables += list(model.g_optimizer.variables) + list(model.d_optimizer.variables)
    for v in variables:
        h.update(v.path.encode())
        h.update(np.ascontiguousarray(np.asarray(v.numpy())).tobytes())
    return h.hexdigest()
