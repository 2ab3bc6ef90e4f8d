"""One OASIS step on 2 replicas (MirroredStrategy, logical CPUs) equals one step
on a single device with the same global batch, with the VGG loss; and model.fit runs."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import oasis_tf

# in-process fits: Grappler off (tests/conftest.py's `no_grappler` says why); the
# 2-replica subprocess turns it off itself
pytestmark = pytest.mark.usefixtures("no_grappler")

# One process with 2 logical CPUs: the step with the VGG loss (``--add_vgg_loss``, the
# superset of the plain step: the same generator and discriminator updates, LabelMix,
# EMA and sync BN, plus the VGG term) with SGD (Adam's first step is +-lr for any
# gradient, so rounding of ~0 gradients would flip it). Adam under 2 replicas:
# test_optimizers.py; the plain step on 2 replicas (2 workers, Adam, 6 steps):
# test_multiworker.py. Tiny networks, global batch of 4. Grappler is off in this
# process: both sides of the comparison run without it (conftest's `no_grappler`).
MIRRORED_STEP = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    import oasis_tf
    from oasis_tf.losses.vgg import _CONV_CHANNELS

    rng = np.random.default_rng(0)
    vgg_state = {}
    for i, (cin, cout) in _CONV_CHANNELS.items():
        vgg_state[f"features.{i}.weight"] = (rng.standard_normal((cout, cin, 3, 3))
                                             * np.sqrt(2.0 / (9 * cout))).astype(np.float32)
        vgg_state[f"features.{i}.bias"] = rng.uniform(-0.1, 0.1, cout).astype(np.float32)
    coarse = rng.integers(0, 5, (4, 8, 8))
    batch = dict(
        image=rng.uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32),
        label=np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32),
        labelmix_bits=rng.integers(0, 2, (4, 5)).astype(np.int32),
        noise_g=rng.standard_normal((4, 3)).astype(np.float32),
        noise_d=rng.standard_normal((4, 3)).astype(np.float32))

    def make_model():
        tf.keras.utils.set_random_seed(0)
        g = oasis_tf.OASISGenerator(num_classes=5, image_size=(64, 64), base_channels=2,
                                    z_dim=3, num_res_blocks=2, spade_hidden=8)
        d = oasis_tf.OASISDiscriminator(num_classes=5, base_channels=4)
        model = oasis_tf.OASIS(g, d, vgg_loss=oasis_tf.losses.VGGLoss(weights=vgg_state),
                               lambda_vgg=10.0)
        model.compile(g_optimizer=tf.keras.optimizers.SGD(0.01),
                      d_optimizer=tf.keras.optimizers.SGD(0.01))
        return model

    def state(model):
        out = {}
        for prefix, net in (("G", model.generator), ("D", model.discriminator),
                            ("EMA", model.ema_generator)):
            for i, w in enumerate(net.weights):
                out[f"{prefix}/{i}/{w.path}"] = np.array(w.numpy())
        for prefix, opt in (("optG", model.g_optimizer), ("optD", model.d_optimizer)):
            for i, w in enumerate(opt.variables):  # name, not path: SGD's are numbered
                out[f"{prefix}/{i}/{w.name}"] = np.array(w.numpy())
        return out

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def run_case():
        # single device, global batch 4; eager (the same kernels as the traced step,
        # at a sixth of the time of tracing it)
        single = make_model()
        initial = state(single)
        logs_single = {k: float(v) for k, v in single.train_step(
            {k: tf.constant(v) for k, v in batch.items()}).items()}
        state_single = state(single)
        # two replicas, 2 examples each
        with strategy.scope():
            mirrored = make_model()
        dist = {k: strategy.experimental_distribute_values_from_function(
                    lambda ctx, v=v: tf.constant(v[2 * ctx.replica_id_in_sync_group:
                                                   2 * ctx.replica_id_in_sync_group + 2]))
                for k, v in batch.items()}
        out = tf.function(lambda b: strategy.run(mirrored.train_step, args=(b,)))(dist)
        logs_mirrored = {k: float(strategy.reduce("MEAN", v, axis=None)) for k, v in out.items()}
        state_mirrored = state(mirrored)
        # every replica holds the same copy of every variable
        for net in (mirrored.generator, mirrored.discriminator, mirrored.ema_generator):
            for w in net.weights:
                copies = strategy.experimental_local_results(w.value)
                assert len(copies) == 2
                np.testing.assert_array_equal(copies[0].numpy(), copies[1].numpy(),
                                              err_msg=w.path)
        assert sorted(state_single) == sorted(state_mirrored)
        worst, scale, moved = {}, {}, 0.0
        for key, value in state_single.items():
            group = key.split("/")[0]
            err = float(np.max(np.abs(value - state_mirrored[key]))) if value.size else 0.0
            worst[group] = max(worst.get(group, 0.0), err)
            scale[group] = max(scale.get(group, 0.0),
                               float(np.max(np.abs(value))) if value.size else 0.0)
            if group in ("G", "D") and value.size:
                moved = max(moved, float(np.max(np.abs(value - initial[key]))))
        for group in [g for g in worst if g.startswith("opt")]:  # Adam moments: relative
            worst[group] /= scale[group]
        return {"single": logs_single, "mirrored": logs_mirrored, "worst": worst,
                "moved": moved}

    print("RESULT " + json.dumps(run_case()))
""")


@pytest.fixture(scope="module")
def mirrored_results():
    """The RESULT of MIRRORED_STEP: the logs of both sides, the worst difference per
    group of variables and how far the step moved the networks."""
    result = subprocess.run([sys.executable, "-c", MIRRORED_STEP], capture_output=True,
                            text=True, timeout=600)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, result.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
def test_two_replicas_equal_one_device_with_the_same_global_batch(mirrored_results):
    """Every loss, every variable of G, D and the EMA generator (with the spectral-norm
    vectors and BN statistics) and the optimizer state after one step on 2 replicas
    equal those of one device with the same global batch."""
    res = mirrored_results
    for name, value in res["single"].items():
        assert abs(res["mirrored"][name] - value) <= 1e-5 * max(1.0, abs(value)), (
            name, value, res["mirrored"][name])
    assert res["moved"] > 1e-3, res  # the step did something
    # SGD moves the weights by up to ~1.5 here; G, D and the EMA agree to float32
    # rounding, the optimizer state relative to its largest entry
    for group, err in res["worst"].items():
        bound = 1e-4 if group.startswith("opt") else 2e-4 * res["moved"]
        assert err <= bound, (group, err, res["worst"])


@pytest.mark.slow
def test_two_replicas_equal_one_device_with_the_vgg_loss(mirrored_results):
    """The official VGG loss (``--add_vgg_loss``) is part of that step, on both sides."""
    res = mirrored_results
    assert res["single"]["loss_g_vgg"] > 0
    assert abs(res["mirrored"]["loss_g_vgg"] - res["single"]["loss_g_vgg"]) <= \
        1e-5 * max(1.0, res["single"]["loss_g_vgg"]), res


def _tiny_model_and_data(seed):
    """A compiled 4-class OASIS at 64x64 and a 2-batch dataset of random examples
    without LabelMix bits (the step draws them).

    Its steps run eagerly (``run_eagerly``): the callbacks and the step's own draws are
    what is checked; ``fit`` of the traced step runs in every ``tools/train.py`` test,
    test_demo.py and test_multiworker.py."""
    tf.keras.utils.set_random_seed(seed)
    g = oasis_tf.OASISGenerator(num_classes=4, image_size=(64, 64), base_channels=2, z_dim=3,
                                num_res_blocks=2, spade_hidden=8)
    d = oasis_tf.OASISDiscriminator(num_classes=4, base_channels=4)
    model = oasis_tf.OASIS(g, d)
    model.compile(run_eagerly=True)
    rng = np.random.default_rng(0)
    data = dict(image=rng.uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32),
                label=rng.integers(0, 4, (4, 64, 64)).astype(np.int32))
    return model, tf.data.Dataset.from_tensor_slices(data).batch(2, drop_remainder=True)


@pytest.mark.slow
def test_fit_trains_a_tiny_model_and_refreshes_the_ema_statistics():
    """``model.fit`` with the LabelMix bits drawn by the step (the data pipeline's bits
    are the path every ``train()`` test takes); ``EMAStatisticsRefresh`` refreshes every 3
    steps and once at the end; the refresh runs train-mode forwards of the EMA
    generator."""
    from oasis_tf.training.ema import EMAStatisticsRefresh

    model, ds = _tiny_model_and_data(1)
    before = [w.numpy().copy() for w in model.ema_generator.trainable_weights]
    calls = []
    original = model.refresh_ema_statistics
    model.refresh_ema_statistics = lambda *a, **k: calls.append(
        int(model.d_optimizer.iterations.numpy())) or original(*a, **k)
    callback = EMAStatisticsRefresh(ds.repeat(), every_n_steps=3, num_batches=2)
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False, callbacks=[callback])
    assert calls == [3, 4]  # every 3 steps, and once at the end
    for name in ("loss_g", "loss_d_fake", "loss_d_real", "loss_d_labelmix", "loss_d"):
        assert len(history.history[name]) == 2 and np.all(np.isfinite(history.history[name]))
    assert int(model.g_optimizer.iterations.numpy()) == 4
    assert int(model.d_optimizer.iterations.numpy()) == 4
    moved = [not np.array_equal(a, w.numpy())
             for a, w in zip(before, model.ema_generator.trainable_weights)]
    assert any(moved)
    # the step's noise differs between steps and between the G and D forwards
    n1 = model.draw_noise(2, 1).numpy()
    n2 = model.draw_noise(2, 2).numpy()
    assert not np.allclose(n1, n2)
    # the EMA BN refresh runs train-mode forwards of the EMA generator
    mean_before = model.ema_generator.body[0].norm_0.first_norm.moving_mean.numpy().copy()
    assert original(ds.repeat(), num_batches=3) == 4
    assert not np.allclose(mean_before,
                           model.ema_generator.body[0].norm_0.first_norm.moving_mean.numpy())
