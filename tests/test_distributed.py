"""One OASIS step on 2 replicas (MirroredStrategy, logical CPUs) equals one step
on a single device with the same global batch; and model.fit runs."""

import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

import oasis_tf

MIRRORED_STEP = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import oasis_tf

    def make_models():
        tf.keras.utils.set_random_seed(0)
        g = oasis_tf.OASISGenerator(num_classes=5, image_size=(64, 64), base_channels=2,
                                    z_dim=3, num_res_blocks=3, spade_hidden=8)
        d = oasis_tf.OASISDiscriminator(num_classes=5, base_channels=4)
        return g, d

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 5, (4, 8, 8))
    batch = dict(
        image=rng.uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32),
        label=np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32),
        labelmix_bits=rng.integers(0, 2, (4, 5)).astype(np.int32),
        noise_g=rng.standard_normal((4, 3)).astype(np.float32),
        noise_d=rng.standard_normal((4, 3)).astype(np.float32))

    def state(model):
        out = {}
        for prefix, net in (("G", model.generator), ("D", model.discriminator),
                            ("EMA", model.ema_generator)):
            for i, w in enumerate(net.weights):
                out[f"{prefix}/{i}/{w.path}"] = np.array(w.numpy())
        for prefix, opt in (("optG", model.g_optimizer), ("optD", model.d_optimizer)):
            for i, w in enumerate(opt.variables):
                out[f"{prefix}/{i}/{w.path}"] = np.array(w.numpy())
        return out

    # single device, global batch 4
    g, d = make_models()
    single = oasis_tf.OASIS(g, d)
    single.compile()
    logs_single = {k: float(v) for k, v in tf.function(single.train_step)(batch).items()}
    state_single = state(single)

    # two replicas, 2 examples each
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        g, d = make_models()
        mirrored = oasis_tf.OASIS(g, d)
        mirrored.compile()
    dist = {k: strategy.experimental_distribute_values_from_function(
                lambda ctx, v=v: tf.constant(v[2 * ctx.replica_id_in_sync_group:
                                               2 * ctx.replica_id_in_sync_group + 2]))
            for k, v in batch.items()}
    step = tf.function(lambda b: strategy.run(mirrored.train_step, args=(b,)))
    out = step(dist)
    logs_mirrored = {k: float(strategy.reduce("MEAN", v, axis=None)) for k, v in out.items()}
    state_mirrored = state(mirrored)
    # every replica holds the same copy of every variable
    for net in (mirrored.generator, mirrored.discriminator, mirrored.ema_generator):
        for w in net.weights:
            copies = strategy.experimental_local_results(w.value)
            assert len(copies) == 2
            np.testing.assert_array_equal(copies[0].numpy(), copies[1].numpy(), err_msg=w.path)

    worst, scale = {}, {}
    assert sorted(state_single) == sorted(state_mirrored)
    for key, value in state_single.items():
        group = key.split("/")[0]
        err = float(np.max(np.abs(value - state_mirrored[key]))) if value.size else 0.0
        worst[group] = max(worst.get(group, 0.0), err)
        scale[group] = max(scale.get(group, 0.0), float(np.max(np.abs(value))) if value.size else 0.0)
    for group in [g for g in worst if g.startswith("opt")]:  # Adam moments: relative
        worst[group] /= scale[group]
    print("RESULT " + json.dumps({"single": logs_single, "mirrored": logs_mirrored,
                                  "worst": worst}))
""")


def test_two_replicas_equal_one_device_with_the_same_global_batch():
    result = subprocess.run([sys.executable, "-c", MIRRORED_STEP], capture_output=True,
                            text=True, timeout=600)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, result.stderr[-4000:]
    import json
    res = json.loads(lines[-1][len("RESULT "):])
    for name, value in res["single"].items():
        assert abs(res["mirrored"][name] - value) <= 1e-5 * max(1.0, abs(value)), (
            name, value, res["mirrored"][name])
    # weights move by ~lr (1e-4 .. 4e-4) in a step; the replicas agree far below
    # that; optimizer moments are compared relative to their largest entry
    for group, err in res["worst"].items():
        assert err < (1e-4 if group.startswith("opt") else 2e-5), (group, err, res["worst"])


def _tiny_model_and_data(seed, labelmix_bits=True):
    """A compiled 4-class OASIS at 64x64 and a 2-batch dataset of random examples."""
    tf.keras.utils.set_random_seed(seed)
    g = oasis_tf.OASISGenerator(num_classes=4, image_size=(64, 64), base_channels=2, z_dim=3,
                                num_res_blocks=3, spade_hidden=8)
    d = oasis_tf.OASISDiscriminator(num_classes=4, base_channels=4)
    model = oasis_tf.OASIS(g, d)
    model.compile()
    rng = np.random.default_rng(0)
    data = dict(image=rng.uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32),
                label=rng.integers(0, 4, (4, 64, 64)).astype(np.int32))
    if labelmix_bits:
        data["labelmix_bits"] = rng.integers(0, 2, (4, 4)).astype(np.int32)
    return model, tf.data.Dataset.from_tensor_slices(data).batch(2, drop_remainder=True)


def test_fit_trains_a_tiny_model():
    model, ds = _tiny_model_and_data(1)
    before = [w.numpy().copy() for w in model.ema_generator.trainable_weights]
    history = model.fit(ds, epochs=2, verbose=0, shuffle=False)
    for name in ("loss_g", "loss_d_fake", "loss_d_real", "loss_d_labelmix", "loss_d"):
        assert len(history.history[name]) == 2 and np.all(np.isfinite(history.history[name]))
    assert int(model.g_optimizer.iterations.numpy()) == 4
    assert int(model.d_optimizer.iterations.numpy()) == 4
    moved = [not np.array_equal(a, w.numpy())
             for a, w in zip(before, model.ema_generator.trainable_weights)]
    assert any(moved)
    # in-graph noise differs between steps and between the G and D forwards
    n1 = model.draw_noise(2, 1).numpy()
    n2 = model.draw_noise(2, 2).numpy()
    assert not np.allclose(n1, n2)
    # the EMA BN refresh runs train-mode forwards of the EMA generator
    mean_before = model.ema_generator.body[0].norm_0.first_norm.moving_mean.numpy().copy()
    assert model.refresh_ema_statistics(ds.repeat(), num_batches=3) == 4
    assert not np.allclose(mean_before,
                           model.ema_generator.body[0].norm_0.first_norm.moving_mean.numpy())


def test_ema_statistics_refresh_callback():
    from oasis_tf.training.ema import EMAStatisticsRefresh

    model, ds = _tiny_model_and_data(2, labelmix_bits=False)  # bits drawn in-graph
    calls = []
    original = model.refresh_ema_statistics
    model.refresh_ema_statistics = lambda *a, **k: calls.append(
        int(model.d_optimizer.iterations.numpy())) or original(*a, **k)
    callback = EMAStatisticsRefresh(ds.repeat(), every_n_steps=3, num_batches=2)
    model.fit(ds.repeat(), steps_per_epoch=4, epochs=1, verbose=0, callbacks=[callback])
    assert calls == [3, 4]  # every 3 steps, and once at the end
