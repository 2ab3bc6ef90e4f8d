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
import tensorflow as tf
from keras import ops

from oasis_tf import losses
from oasis_tf.models.generator import OASISGenerator
from oasis_tf.optimizers import TorchAdam
from oasis_tf.training.ema import refresh_ema_statistics, update_ema_weights
from oasis_tf.training.replicas import all_reduce_sum, in_multi_worker_mode, replica_id
from oasis_tf.training.updates import (after, apply_step, scale_loss, sequential_gradients,
                                       with_loss_scaling)

# Logged in addition when the VGG loss is on (lambda_vgg included).
VGG_METRIC_NAME = "loss_g_vgg"
# Streams of the in-graph randomness (``OASIS._stateless_seed``): the noise of the
# G-update forward, the noise of the D-update forward, the LabelMix bits. The
# numbers are part of the seeds, so changing them changes every run's draws.
NOISE_STREAM_G_UPDATE = 1
NOISE_STREAM_D_UPDATE = 2
LABELMIX_STREAM = 3


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
        names = losses.LOSS_NAMES + ((VGG_METRIC_NAME,) if vgg_loss is not None else ())
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
            self.g_optimizer = with_loss_scaling(self.g_optimizer)
            self.d_optimizer = with_loss_scaling(self.d_optimizer)
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
        step = ops.cast(self.d_optimizer.iterations, "int64")
        replica = ops.cast(replica_id(), "int64")
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
        counts, pixels = all_reduce_sum([counts, pixels])
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
            scaled_g = scale_loss(self.g_optimizer, total_g)
        g_grads = tape.gradient(scaled_g, G.trainable_variables)
        apply_step(self.g_optimizer, g_grads, G.trainable_variables)

        # 2. discriminator update (fresh noise; G in train mode, no gradient),
        # started once G's backward pass is done (its activations are freed)
        image, label, noise_d = after(g_grads, image, label, noise_d)
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
            scaled_d = scale_loss(self.d_optimizer, loss_d)
        d_grads = sequential_gradients(tape, scaled_d, outputs, D.trainable_variables)
        del tape
        apply_step(self.d_optimizer, d_grads, D.trainable_variables)

        # 3. EMA of every generator variable
        if self.use_ema:
            self.update_ema()

        # Each replica holds its share of the global loss: the sum over replicas is
        # the global loss, so every replica reports the same values.
        shares = [loss_g, loss_d, loss_d_fake, loss_d_real, loss_d_labelmix]  # LOSS_NAMES
        if self.vgg_loss is not None:
            shares.append(loss_g_vgg)
        totals = all_reduce_sum([ops.cast(v, "float32") for v in shares])
        for name, value in zip(self.loss_trackers, totals):
            self.loss_trackers[name].update_state(value)
        results = {name: tracker.result() for name, tracker in self.loss_trackers.items()}
        if in_multi_worker_mode():
            # Keras 3 reduces the step outputs of a multi-worker strategy with
            # strategy.reduce(MEAN, axis=0), which needs rank >= 1; it returns scalars.
            results = {name: ops.reshape(value, [1]) for name, value in results.items()}
        return results

    # ------------------------------------------------------------ EMA
    def update_ema(self):
        """``ema = decay * ema + (1 - decay) * g`` for every generator variable
        (``oasis_tf.training.ema.update_ema_weights``: float32 products rounded
        separately, then summed, like the official in-place update)."""
        update_ema_weights(list(zip(self.ema_generator.weights, self.generator.weights)),
                           self.ema_decay)

    def refresh_ema_statistics(self, dataset, num_batches=50, seed=0):
        """Recompute the EMA generator's BN statistics (official behaviour): train-mode
        forwards over up to ``num_batches + 1`` batches of ``dataset`` (dict batches
        with a "label"), noise from ``seed``; returns the number of forwards
        (``oasis_tf.training.ema.refresh_ema_statistics``)."""
        return refresh_ema_statistics(self, dataset, num_batches, seed)

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
