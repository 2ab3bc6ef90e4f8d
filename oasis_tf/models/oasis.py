"""The OASIS training model: generator, discriminator and EMA generator in one
``keras.Model`` whose ``train_step`` follows the official iteration.

One iteration, in the official order:

1. G update: ``fake = G(label, noise_g)``; ``loss_g`` = class-balanced CE of
   ``D(fake)`` against the real classes; an Adam step on G's variables only.
2. D update: ``fake = G(label, noise_d)`` (train mode, no gradient);
   ``D(fake)``, ``D(real)``, ``D(mixed)`` in that order; ``loss_d = fake CE +
   balanced real CE + lambda * LabelMix``; an Adam step on D's variables only.
3. EMA: every variable of the EMA generator (weights, spectral-norm u/v, BN
   statistics) moves to ``decay * ema + (1 - decay) * g``.

With a ``vgg_loss`` (official ``--add_vgg_loss``) the G update minimises
``loss_g + loss_g_vgg``, ``loss_g_vgg = lambda_vgg * VGG(fake, real)``; the VGG
runs in float32 whatever the dtype policy.

G runs 2 train-mode forwards and D 4 (3 without LabelMix) per iteration, as the
official code, so power iterations and BN momentum updates match.

Global-batch semantics under ``tf.distribute``: class counts and the pixel
count are all-reduced, each replica's loss is its share of the global loss
(``sum / global count``), so the gradients ``apply_gradients`` sums over
replicas are those of one device on the global batch; the SPADE batch norm is
synchronized.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from oasis_tf import losses
from oasis_tf.models.generator import OASISGenerator
from oasis_tf.optimizers import TorchAdam

METRIC_NAMES = ("loss_g", "loss_d_fake", "loss_d_real", "loss_d_labelmix", "loss_d")
# Logged in addition when the VGG loss is on (lambda_vgg included).
VGG_METRIC_NAME = "loss_g_vgg"
# Streams of the in-graph randomness (``OASIS._stateless_seed``): the noise of the
# G-update forward, the noise of the D-update forward, the LabelMix bits. The
# numbers are part of the seeds, so changing them changes every run's draws.
NOISE_STREAM_G_UPDATE = 1
NOISE_STREAM_D_UPDATE = 2
LABELMIX_STREAM = 3


def _replica_context():
    ctx = tf.distribute.get_replica_context()
    return ctx, (ctx.num_replicas_in_sync if ctx is not None else 1)


def _all_reduce_sum(values):
    ctx, replicas = _replica_context()
    if replicas == 1:
        return values
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, values)


def _multi_worker():
    """True under a MultiWorkerMirroredStrategy with more than one worker."""
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    in_multi_worker_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker_mode()) if in_multi_worker_mode is not None else True


def _loss_scale(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{optimizer.name}_loss_scale")


def _scale_loss(optimizer, loss):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def _apply(optimizer, grads, variables):
    """One optimizer step on ``variables`` with ``grads``.

    With a ``LossScaleOptimizer`` (float16) ``grads`` are those of the scaled
    loss; the optimizer divides them by the scale and skips the step when they
    are not finite. Here the finiteness is made global first (one non-finite
    gradient on any replica poisons every replica's gradients), so all replicas
    take the same decision, and a skipped step still advances ``iterations``
    (the training step counter: data position, noise seeds, checkpoints).
    """
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        optimizer.apply_gradients(zip(grads, variables))
        return
    flags = [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
    local_bad = 1.0 - tf.cast(tf.reduce_all(tf.stack(flags)), tf.float32)
    finite = tf.equal(_all_reduce_sum(local_bad), 0.0)
    poison = tf.where(finite, 1.0, float("nan"))
    grads = [None if g is None else g * tf.cast(poison, g.dtype) for g in grads]
    optimizer.apply_gradients(zip(grads, variables))
    optimizer.iterations.assign_add(tf.cast(tf.logical_not(finite), optimizer.iterations.dtype))


def _after(tensors, *values):
    """``values`` passed through ``tf.identity`` once every tensor in ``tensors``
    exists: what is computed from them waits for ``tensors``.

    The runtime runs every op as soon as its inputs are ready, so without this
    the discriminator update's forwards would run while the generator update's
    backward pass still holds its activations (higher peak memory)."""
    with tf.control_dependencies([t for t in tensors if t is not None]):
        return [tf.identity(v) for v in values]


def _sequential_gradients(tape, loss, outputs, variables):
    """Gradients of ``loss`` w.r.t. ``variables`` for a loss of several forwards
    of one network (``outputs``, one tensor per forward).

    The same sum as ``tape.gradient(loss, variables)``, but the backward passes
    run one after another, the last forward's first (as PyTorch's autograd
    orders them), so only one of them holds its gradient buffers at a time;
    run jointly, TensorFlow runs the three discriminator backward passes
    together (higher peak memory). ``tape`` must be persistent.
    """
    output_grads = tape.gradient(loss, outputs)
    total = None
    for output, output_grad in zip(reversed(outputs), reversed(output_grads)):
        with tf.control_dependencies([g for g in total or () if g is not None]):
            part = tape.gradient(output, variables, output_gradients=output_grad)
        if total is None:
            total = part
        else:
            total = [a if b is None else b if a is None else a + b for a, b in zip(total, part)]
    return total


@keras.saving.register_keras_serializable(package="oasis_tf")
class OASIS(keras.Model):
    """Trains an OASIS generator and discriminator with ``fit``.

    Batches are dicts: ``image`` float [B, H, W, 3] in [-1, 1], ``label`` int32
    [B, H, W], ``labelmix_bits`` [B, num_classes] of 0/1 (drawn in-graph when
    absent), and optionally ``noise_g`` / ``noise_d`` float [B, z_dim] or
    [B, H, W, z_dim] for the G-update and D-update forwards (drawn in-graph
    from the model seed, the step and the replica when absent).

    Args:
        generator: an ``OASISGenerator``.
        discriminator: an ``OASISDiscriminator`` with the same ``num_classes``.
        ema_generator: the EMA copy (default: a copy of ``generator`` when
            ``use_ema``).
        lambda_labelmix: weight of the LabelMix term (10 official; 5 Cityscapes).
        ema_decay: EMA decay (0.9999 official; 0.999 Cityscapes).
        dontcare_label: class 0 is "don't care" (weight 0 in the balanced loss).
        use_labelmix: the LabelMix regulariser (ablation switch).
        class_balancing: class-balanced real-image losses (ablation switch).
        use_ema: keep an EMA generator (ablation switch).
        seed: seed of the in-graph noise and LabelMix bits.
        vgg_loss: an ``oasis_tf.losses.VGGLoss`` to add to the generator loss
            (official ``--add_vgg_loss``), or None (official default).
        lambda_vgg: weight of the VGG loss (official 10).
    """

    def __init__(self, generator, discriminator, ema_generator=None, lambda_labelmix=10.0,
                 ema_decay=0.9999, dontcare_label=True, use_labelmix=True,
                 class_balancing=True, use_ema=True, seed=0, vgg_loss=None, lambda_vgg=10.0,
                 **kwargs):
        super().__init__(**kwargs)
        if generator.num_classes != discriminator.num_classes:
            raise ValueError(f"generator and discriminator disagree on num_classes: "
                             f"{generator.num_classes} vs {discriminator.num_classes}. "
                             f"Received: generator.num_classes={generator.num_classes}, "
                             f"discriminator.num_classes={discriminator.num_classes}")
        if not 0.0 <= float(ema_decay) < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1). Received: ema_decay={ema_decay}")
        for key, value in (("lambda_labelmix", lambda_labelmix), ("lambda_vgg", lambda_vgg)):
            if float(value) < 0.0:
                raise ValueError(f"`{key}` must be >= 0. Received: {key}={value}")
        self.generator = generator
        self.discriminator = discriminator
        self.num_classes = generator.num_classes
        self.lambda_labelmix = float(lambda_labelmix)
        self.ema_decay = float(ema_decay)
        self.dontcare_label = bool(dontcare_label)
        self.use_labelmix = bool(use_labelmix)
        self.class_balancing = bool(class_balancing)
        self.use_ema = bool(use_ema)
        self.seed = int(seed)
        self.lambda_vgg = float(lambda_vgg)
        if vgg_loss is not None and not callable(vgg_loss):
            raise ValueError(f"`vgg_loss` must be a VGGLoss or None. Received: "
                             f"vgg_loss={vgg_loss!r}")
        # A plain object (not tracked): its weights are constants, not model state.
        self.vgg_loss = vgg_loss
        self.ema_generator = None
        if self.use_ema:
            if ema_generator is None:
                ema_generator = OASISGenerator.from_config(
                    {**generator.get_config(), "name": "ema_generator"})
                for target, source in zip(ema_generator.weights, generator.weights):
                    target.assign(source)
            self.ema_generator = ema_generator
        names = METRIC_NAMES + ((VGG_METRIC_NAME,) if vgg_loss is not None else ())
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.g_optimizer = None
        self.d_optimizer = None
        self.built = True

    # ------------------------------------------------------------ compile
    def compile(self, g_optimizer=None, d_optimizer=None, lr_g=1e-4, lr_d=4e-4,
                loss_scaling="auto", **kwargs):
        """Set the two optimizers (defaults: PyTorch-style Adam, betas (0, 0.999),
        epsilon 1e-8) and build them on their variable lists.

        Call inside ``strategy.scope()`` when training under tf.distribute.

        Args:
            g_optimizer: optimizer of the generator.
            d_optimizer: optimizer of the discriminator.
            lr_g: generator learning rate of the default optimizer.
            lr_d: discriminator learning rate of the default optimizer.
            loss_scaling: wrap both optimizers in ``keras.optimizers.LossScaleOptimizer``
                (dynamic loss scaling). "auto": when the generator or the
                discriminator computes in float16 (``mixed_float16``).
            **kwargs: passed to ``keras.Model.compile`` (e.g. ``jit_compile``).
        """
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = g_optimizer or TorchAdam(learning_rate=lr_g, name="g_optimizer")
        self.d_optimizer = d_optimizer or TorchAdam(learning_rate=lr_d, name="d_optimizer")
        if loss_scaling == "auto":
            loss_scaling = "float16" in (self.generator.compute_dtype,
                                         self.discriminator.compute_dtype)
        if loss_scaling:
            self.g_optimizer = _loss_scale(self.g_optimizer)
            self.d_optimizer = _loss_scale(self.d_optimizer)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Every variable exists after __init__ and compile(), so Keras's symbolic
        # build has nothing to build. Keras 3's TensorFlow trainer would still take
        # the first distributed batch and `strategy.reduce` the whole dict of
        # PerReplica values, which MultiWorkerMirroredStrategy rejects ("unsupported
        # type <class 'dict'>"); skip it when there is nothing to build.
        built = all(layer.built for layer in self._flatten_layers())
        if built and (self.g_optimizer is None or self.g_optimizer.built):
            return None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # ------------------------------------------------------------ randomness
    def _stateless_seed(self, stream):
        """A per-step, per-replica seed; resumable (derived from the step)."""
        ctx, _ = _replica_context()
        replica = ctx.replica_id_in_sync_group if ctx is not None else 0
        step = ops.cast(self.d_optimizer.iterations, "int64")
        replica = ops.cast(replica, "int64")
        base = tf.constant((self.seed * 1000003 + stream) % (2**62), tf.int64)
        return tf.stack([base + replica * 7919, step])

    def draw_noise(self, batch_size, stream):
        """Standard normal noise [B, z_dim] drawn in-graph.

        Args:
            batch_size: B.
            stream: ``NOISE_STREAM_G_UPDATE`` or ``NOISE_STREAM_D_UPDATE``.
        """
        return tf.random.stateless_normal([batch_size, self.generator.z_dim],
                                          seed=self._stateless_seed(stream), alg="philox")

    def draw_labelmix_bits(self, batch_size):
        """One random bit per example and class, [B, num_classes]."""
        return tf.random.stateless_uniform([batch_size, self.num_classes],
                                           seed=self._stateless_seed(LABELMIX_STREAM), maxval=2,
                                           alg="philox",
                                           dtype=tf.int32)

    # ------------------------------------------------------------ training
    def _global_counts(self, label):
        counts = losses.class_counts(label, self.num_classes)
        shape = tf.shape(label)
        pixels = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
        counts, pixels = _all_reduce_sum([counts, pixels])
        weights = None
        if self.class_balancing:
            weights = losses.class_balance_weights(counts, pixels, self.dontcare_label)
        return weights, pixels

    def train_step(self, data):
        if self.g_optimizer is None:
            raise RuntimeError("call compile() before training")
        image = ops.convert_to_tensor(data["image"])
        label = ops.cast(data["label"], "int32")
        batch_size = tf.shape(label)[0]
        noise_g = data.get("noise_g")
        if noise_g is None:
            noise_g = self.draw_noise(batch_size, NOISE_STREAM_G_UPDATE)
        noise_d = data.get("noise_d")
        if noise_d is None:
            noise_d = self.draw_noise(batch_size, NOISE_STREAM_D_UPDATE)
        weights, pixels = self._global_counts(label)
        G, D = self.generator, self.discriminator

        # 1. generator update
        with tf.GradientTape() as tape:
            fake = G({"label": label, "noise": noise_g}, training=True)
            loss_g = losses.g_adversarial_loss(D(fake, training=True), label, weights, pixels)
            total_g = loss_g
            if self.vgg_loss is not None:
                # the mean is over the global batch, as the other losses
                global_batch = pixels / tf.cast(tf.shape(label)[1] * tf.shape(label)[2],
                                                tf.float32)
                loss_g_vgg = self.lambda_vgg * self.vgg_loss(fake, image,
                                                             batch_size=global_batch)
                total_g = loss_g + loss_g_vgg
            scaled_g = _scale_loss(self.g_optimizer, total_g)
        g_grads = tape.gradient(scaled_g, G.trainable_variables)
        _apply(self.g_optimizer, g_grads, G.trainable_variables)

        # 2. discriminator update (fresh noise; G in train mode, no gradient),
        # started once G's backward pass is done (its activations are freed)
        image, label, noise_d = _after(g_grads, image, label, noise_d)
        fake = ops.stop_gradient(G({"label": label, "noise": noise_d}, training=True))
        with tf.GradientTape(persistent=True) as tape:
            d_fake = D(fake, training=True)
            loss_d_fake = losses.d_fake_loss(d_fake, pixels)
            d_real = D(image, training=True)
            loss_d_real = losses.d_real_loss(d_real, label, weights, pixels)
            outputs = [d_fake, d_real]
            loss_d_labelmix = tf.zeros([], tf.float32)
            if self.use_labelmix:
                bits = data.get("labelmix_bits")
                bits = self.draw_labelmix_bits(batch_size) if bits is None else bits
                mask = losses.labelmix_mask(label, bits)
                d_mixed = D(losses.labelmix_images(mask, image, fake), training=True)
                outputs.append(d_mixed)
                elements = pixels * float(self.num_classes + 1)
                loss_d_labelmix = self.lambda_labelmix * losses.labelmix_loss(
                    d_real, d_fake, d_mixed, mask, elements)
            loss_d = loss_d_fake + loss_d_real + loss_d_labelmix
            scaled_d = _scale_loss(self.d_optimizer, loss_d)
        d_grads = _sequential_gradients(tape, scaled_d, outputs, D.trainable_variables)
        del tape
        _apply(self.d_optimizer, d_grads, D.trainable_variables)

        # 3. EMA of every generator variable
        if self.use_ema:
            self.update_ema()

        # Each replica holds its share of the global loss: the sum over replicas is
        # the global loss, so every replica reports the same values.
        shares = [loss_g, loss_d_fake, loss_d_real, loss_d_labelmix, loss_d]
        if self.vgg_loss is not None:
            shares.append(loss_g_vgg)
        totals = _all_reduce_sum([ops.cast(v, "float32") for v in shares])
        for name, value in zip(self.loss_trackers, totals):
            self.loss_trackers[name].update_state(value)
        results = {name: tracker.result() for name, tracker in self.loss_trackers.items()}
        if _multi_worker():
            # Keras 3 reduces the step outputs of a multi-worker strategy with
            # strategy.reduce(MEAN, axis=0), which needs rank >= 1; it returns scalars.
            results = {name: ops.reshape(value, [1]) for name, value in results.items()}
        return results

    # ------------------------------------------------------------ EMA
    def _ema_pairs(self):
        return list(zip(self.ema_generator.weights, self.generator.weights))

    def update_ema(self):
        """``ema = decay * ema + (1 - decay) * g`` for every generator variable.

        The products are rounded to float32 separately, then summed, like the
        official in-place update. Runs in cross-replica context (merge_call).
        """
        # One constant each for the whole update (not two per variable).
        decay = tf.constant(np.float32(self.ema_decay))
        keep = tf.constant(np.float32(1.0 - self.ema_decay))

        def update(ema, source):
            # `ema * decay` needs only the EMA weights: in a graph it would run
            # at the start of the training step and hold a copy of the whole
            # generator through both updates, so it waits for `source * keep`
            # (which reads the updated generator weights).
            contribution = source * keep
            with tf.control_dependencies([contribution]):
                decayed = ema * decay
            return ema.assign(decayed + contribution)

        def cross_replica(strategy):
            for ema, source in self._ema_pairs():
                strategy.extended.update(ema.value, update, args=(source.value,))

        if tf.distribute.in_cross_replica_context():
            cross_replica(tf.distribute.get_strategy())
        else:
            tf.distribute.get_replica_context().merge_call(cross_replica)

    def refresh_ema_statistics(self, dataset, num_batches=50, seed=0):
        """Recompute the EMA generator's BN statistics (official behaviour).

        Runs the EMA generator in training mode over up to ``num_batches + 1``
        batches (the official loop stops after 51), which continues the momentum
        updates of its running statistics and its power iterations.

        Args:
            dataset: iterable of dict batches with a "label" (e.g. the training
                ``tf.data.Dataset``).
            num_batches: the official 50 (51 forwards).
            seed: seed of the noise.

        Returns:
            The number of forwards run.
        """
        if self.ema_generator is None:
            return 0
        forward = self._ema_refresh_forward()
        count = 0
        for batch in dataset:
            forward(ops.cast(batch["label"], "int32"),
                    tf.constant([seed, count]))
            count += 1
            if count > num_batches:
                break
        return count

    def _ema_refresh_forward(self):
        """One train-mode EMA forward as a ``tf.function``, built once per model
        (a new one per call would be traced again every time)."""
        if getattr(self, "_ema_refresh_fn", None) is None:
            ema, z_dim = self.ema_generator, self.generator.z_dim

            def forward(label, seed_pair):
                noise = tf.random.stateless_normal([tf.shape(label)[0], z_dim],
                                                   seed=seed_pair, alg="philox")
                ema({"label": label, "noise": noise}, training=True)

            # kept out of Keras' attribute tracking
            object.__setattr__(self, "_ema_refresh_fn", tf.function(forward))
        return self._ema_refresh_fn

    # ------------------------------------------------------------ misc
    def call(self, inputs, training=False):
        """Generate with the EMA generator when there is one."""
        generator = self.ema_generator if self.ema_generator is not None else self.generator
        return generator(inputs, training=training)

    def get_config(self):
        return {"name": self.name,
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "lambda_labelmix": self.lambda_labelmix, "ema_decay": self.ema_decay,
                "dontcare_label": self.dontcare_label, "use_labelmix": self.use_labelmix,
                "class_balancing": self.class_balancing, "use_ema": self.use_ema,
                "seed": self.seed, "lambda_vgg": self.lambda_vgg,
                "vgg_loss": None if self.vgg_loss is None else self.vgg_loss.get_config()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        if isinstance(config.get("vgg_loss"), dict):
            from oasis_tf.losses.vgg import VGGLoss

            config["vgg_loss"] = VGGLoss(**config["vgg_loss"])
        return cls(**config)
