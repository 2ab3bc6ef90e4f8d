"""The training step under ``tf.distribute``: the replica context, global sums and
multi-worker detection (``OASIS.train_step`` and the trainer use them).

Global-batch semantics: class counts and pixel counts are summed over the replicas
(``all_reduce_sum``) so each replica's loss is its share of the global loss, and the
gradients ``apply_gradients`` sums over replicas are those of one device on the global
batch.
"""

import tensorflow as tf


def replica_context():
    """``(the replica context or None, the number of replicas in sync)``."""
    ctx = tf.distribute.get_replica_context()
    return ctx, (ctx.num_replicas_in_sync if ctx is not None else 1)


def replica_id():
    """This replica's id in its sync group (0 outside a strategy)."""
    ctx, _ = replica_context()
    return ctx.replica_id_in_sync_group if ctx is not None else 0


def all_reduce_sum(values):
    """``values`` (a tensor or a structure of tensors) summed over the replicas."""
    ctx, replicas = replica_context()
    if replicas == 1:
        return values
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)


def in_multi_worker_mode():
    """True under a MultiWorkerMirroredStrategy with more than one worker."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    check = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(check()) if check is not None else True
