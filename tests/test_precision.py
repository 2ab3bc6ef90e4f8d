"""Mixed precision: mixed_bfloat16 and mixed_float16 (loss scaling) train a tiny
OASIS with finite losses close to float32's; variables, the generator's images and
the discriminator's logits stay float32; the global policy is not leaked."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import oasis_tf
from oasis_tf.training import hardware, precision

STEPS = 5
NUM_CLASSES = 5
# max |loss - float32 loss| / max(|float32 loss|, 0.1) over 5 steps of this tiny model.
# bfloat16 on a CPU without native bfloat16 (AVX2 only: TensorFlow's emulated kernels)
# moves the LabelMix term (a difference of D's outputs) most; docs/testing.md has the
# measured values per CPU.
TOLERANCE = {"mixed_float16": 0.05,
             "mixed_bfloat16": 0.1 if hardware.native_bfloat16_flags() else 0.25}


def _batches():
    rng = np.random.default_rng(0)
    out = []
    for _ in range(STEPS):
        coarse = rng.integers(0, NUM_CLASSES, (2, 8, 8))
        out.append(dict(
            image=rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32),
            label=np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32),
            labelmix_bits=rng.integers(0, 2, (2, NUM_CLASSES)).astype(np.int32),
            noise_g=rng.standard_normal((2, 3)).astype(np.float32),
            noise_d=rng.standard_normal((2, 3)).astype(np.float32)))
    return out


def _model(policy, init=None):
    with precision.policy_scope(policy):
        g = oasis_tf.OASISGenerator(num_classes=NUM_CLASSES, image_size=(64, 64),
                                    base_channels=2, z_dim=3, num_res_blocks=3,
                                    spade_hidden=8)
        d = oasis_tf.OASISDiscriminator(num_classes=NUM_CLASSES, base_channels=4)
        model = oasis_tf.OASIS(g, d)
    if init is not None:  # the same initial weights as the float32 model
        for net, ref in ((model.generator, init.generator),
                         (model.discriminator, init.discriminator),
                         (model.ema_generator, init.ema_generator)):
            for w, r in zip(net.weights, ref.weights):
                w.assign(r.numpy())
    model.compile()
    return model


def _run(model, step=None):
    """Losses of the STEPS batches; without ``step``, eagerly (the float32 reference:
    the same kernels as a traced step, without the ~10 s of tracing one)."""
    history = []
    for batch in _batches():
        model.reset_metrics()
        if step is None:
            logs = model.train_step({k: tf.constant(v) for k, v in batch.items()})
        else:
            logs = step(batch)
        history.append({k: float(v) for k, v in logs.items()})
    return history


# Grappler off for both sides of every comparison (tests/conftest.py's `no_grappler`)
pytestmark = [pytest.mark.usefixtures("no_grappler"), pytest.mark.slow]


@pytest.fixture(scope="module")
def float32_run():
    keras.utils.set_random_seed(0)
    model = _model("float32")
    init = _model("float32", init=model)  # untouched copy of the initial weights
    return init, _run(model)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_policy_tracks_float32(policy, float32_run):
    init, reference = float32_run
    before = keras.mixed_precision.global_policy().name
    model = _model(policy, init=init)
    assert keras.mixed_precision.global_policy().name == before  # not leaked
    compute = "bfloat16" if policy == "mixed_bfloat16" else "float16"
    assert model.generator.compute_dtype == compute
    assert model.discriminator.compute_dtype == compute
    scaled = isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer) == scaled

    if scaled:
        # The default initial scale 2**15 overflows this model's float16 D gradients
        # in steps 3 and 4 (skipped, scale halved twice, as designed); start lower
        # so the comparison is step by step.
        for opt in (model.g_optimizer, model.d_optimizer):
            opt.dynamic_scale.assign(1024.0)
    step = tf.function(model.train_step)
    history = _run(model, step)
    worst = 0.0
    for ref, got in zip(reference, history):
        for name, value in got.items():
            assert np.isfinite(value), (policy, name, got)
            worst = max(worst, abs(value - ref[name]) / max(abs(ref[name]), 0.1))
    print(f"{policy}: worst relative loss difference to float32 over {STEPS} steps: "
          f"{worst:.2e}")
    assert worst < TOLERANCE[policy], (policy, worst, history, reference)

    # every variable float32, and every step was applied (none skipped)
    for net in (model.generator, model.discriminator, model.ema_generator):
        for w in net.weights:
            assert w.dtype == "float32", w.path
    for opt in (model.g_optimizer, model.d_optimizer):
        assert int(opt.iterations.numpy()) == STEPS
        for v in opt.variables:
            assert "float" not in str(v.dtype) or v.dtype == "float32", v.path

    # outputs float32; the internals really ran in the low-precision dtype
    batch = _batches()[0]
    inputs = {"label": batch["label"], "noise": batch["noise_g"]}
    image = model.generator(inputs, training=False)
    logits = model.discriminator(image, training=False)
    assert image.dtype == "float32" and logits.dtype == "float32"
    stages = model.generator.intermediates(inputs, training=False)
    assert stages["body0_out"].dtype == compute
    assert np.all(np.isfinite(image.numpy())) and np.all(np.isfinite(logits.numpy()))
    if scaled:
        _check_skipped_step(model, step, batch)


def _check_skipped_step(model, step, batch):
    """float16: a NaN gradient skips the update (weights and Adam state unchanged),
    halves the loss scale and still counts as a step."""
    bad = dict(batch, image=np.full_like(batch["image"], np.nan))
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    moments = [v.numpy().copy() for v in model.d_optimizer.inner_optimizer.variables
               if "iteration" not in v.path]
    scale = float(model.d_optimizer.dynamic_scale.numpy())
    step(bad)
    for a, w in zip(d_before, model.discriminator.trainable_weights):
        np.testing.assert_array_equal(a, w.numpy())
    after = [v.numpy() for v in model.d_optimizer.inner_optimizer.variables
             if "iteration" not in v.path]
    for a, b in zip(moments, after):
        np.testing.assert_array_equal(a, b)
    assert float(model.d_optimizer.dynamic_scale.numpy()) == scale / 2
    assert int(model.d_optimizer.iterations.numpy()) == STEPS + 1
    assert int(model.g_optimizer.iterations.numpy()) == STEPS + 1


def test_build_model_applies_the_config_policy():
    from oasis_tf.config import load_config
    from oasis_tf.training import build_model

    config = load_config("synthetic", overrides=[
        "model.num_res_blocks=2", "model.g_channels=2", "model.d_channels=4",
        "model.z_dim=4", "train.mixed_precision=mixed_bfloat16"])
    model = build_model(config)
    assert model.generator.compute_dtype == "bfloat16"
    assert model.ema_generator.compute_dtype == "bfloat16"
    assert model.discriminator.compute_dtype == "bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="mixed_precision"):
        precision.check_policy("float64")
