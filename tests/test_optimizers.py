"""Tests of oasis_tf.optimizers: TorchAdam follows torch.optim.Adam (epsilon
after the bias correction), serializes, and works under MirroredStrategy."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from oasis_tf.optimizers import LinearWarmup, TorchAdam, make_optimizers

LR = 1e-2
NUM_STEPS = 3


def _problem(seed, tiny=False):
    """Random variables and NUM_STEPS gradients per variable."""
    rng = np.random.default_rng(seed)
    shapes = [(7, 5), (13,), (2, 3, 4)]
    params = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = []
    for _ in range(NUM_STEPS):
        step = []
        for s in shapes:
            if tiny:  # where epsilon placement matters
                g = rng.choice([-1.0, 1.0], size=s) * rng.uniform(0.5e-9, 2e-9, size=s)
            else:  # magnitudes from 1e-10 to 1
                g = rng.normal(size=s) * 10.0 ** rng.uniform(-10, 0, size=s)
            step.append(g.astype(np.float32))
        grads.append(step)
    return params, grads


def _numpy_torch_adam(params, grads, lr, beta_1, beta_2, eps):
    """torch.optim.Adam's single-tensor CPU update (no weight decay, no
    amsgrad) in float32 NumPy, with torch's operation order; the step scalars
    are Python floats, cast to float32 where torch casts them."""
    f32 = np.float32
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    weight = f32(1 - beta_1)
    for t, step in enumerate(grads, start=1):
        step_size = f32(lr / (1 - beta_1**t))
        bias_correction_2_sqrt = f32((1 - beta_2**t) ** 0.5)
        for i, g in enumerate(step):
            # m.lerp_(g, 1 - beta_1)
            if weight < 0.5:
                m[i] = m[i] + weight * (g - m[i])
            else:
                m[i] = g - (g - m[i]) * (f32(1) - weight)
            # v.mul_(beta_2).addcmul_(g, g, value=1 - beta_2)
            v[i] = v[i] * f32(beta_2) + (f32(1 - beta_2) * g) * g
            denom = np.sqrt(v[i]) / bias_correction_2_sqrt + f32(eps)
            # p.addcdiv_(m, denom, value=-step_size)
            params[i] = params[i] + (-step_size * m[i]) / denom
    return params, m, v


def _run_keras(optimizer, params, grads):
    variables = [keras.Variable(p) for p in params]
    for step in grads:
        optimizer.apply_gradients(zip([tf.constant(g) for g in step], variables))
    return [v.numpy() for v in variables]


def _assert_updates_close(after, expected, before, lr, tol):
    """Compares `after - before` in units of lr (params are ~1, steps ~lr)."""
    for a, e, b in zip(after, expected, before):
        np.testing.assert_allclose((a - b) / lr, (e - b) / lr, rtol=0, atol=tol)
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("beta_1", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("tiny", [False, True])
def test_matches_numpy_torch_formulas(beta_1, tiny):
    params, grads = _problem(0, tiny)
    opt = TorchAdam(learning_rate=LR, beta_1=beta_1)
    after = _run_keras(opt, params, grads)
    expected, m, v = _numpy_torch_adam(params, grads, LR, beta_1, 0.999, 1e-8)
    _assert_updates_close(after, expected, params, LR, 1e-4)
    for i in range(len(params)):
        np.testing.assert_allclose(opt._momentums[i].numpy(), m[i], rtol=1e-6, atol=0)
        np.testing.assert_allclose(opt._velocities[i].numpy(), v[i], rtol=1e-5, atol=0)
    assert int(opt.iterations.numpy()) == NUM_STEPS


@pytest.mark.slow
@pytest.mark.parametrize("beta_1", [0.0, 0.9])
@pytest.mark.parametrize("tiny", [False, True])
def test_matches_torch_adam(beta_1, tiny):
    torch = pytest.importorskip("torch")
    params, grads = _problem(1, tiny)
    opt = TorchAdam(learning_rate=LR, beta_1=beta_1)
    after = _run_keras(opt, params, grads)

    tparams = [torch.nn.Parameter(torch.tensor(p)) for p in params]
    topt = torch.optim.Adam(tparams, lr=LR, betas=(beta_1, 0.999))
    for step in grads:
        for p, g in zip(tparams, step):
            p.grad = torch.tensor(g)
        topt.step()
    expected = [p.detach().numpy() for p in tparams]
    # torch's CPU sqrt is not correctly rounded: a few float32 ulps apart.
    _assert_updates_close(after, expected, params, LR, 1e-4)
    for i, p in enumerate(tparams):
        state = topt.state[p]
        np.testing.assert_allclose(
            opt._momentums[i].numpy(), state["exp_avg"].numpy(), rtol=1e-6, atol=0
        )
        np.testing.assert_allclose(
            opt._velocities[i].numpy(), state["exp_avg_sq"].numpy(), rtol=1e-5, atol=0
        )


def test_stock_keras_adam_differs_for_tiny_gradients():
    """Why the subclass exists: Keras adds epsilon before the bias correction."""
    params, grads = _problem(2, tiny=True)
    expected, _, _ = _numpy_torch_adam(params, grads, LR, 0.0, 0.999, 1e-8)
    ours = _run_keras(TorchAdam(learning_rate=LR), params, grads)
    stock = _run_keras(
        keras.optimizers.Adam(learning_rate=LR, beta_1=0.0, beta_2=0.999, epsilon=1e-8),
        params,
        grads,
    )
    _assert_updates_close(ours, expected, params, LR, 1e-4)
    worst = max(np.max(np.abs(s - e)) / LR for s, e in zip(stock, expected))
    assert worst > 0.02, worst  # several percent of lr off
    # With ordinary gradients both agree (the difference is only in epsilon).
    params, grads = _problem(3)
    big = [[np.sign(g) * np.maximum(np.abs(g), 1e-2) for g in s] for s in grads]
    ours = _run_keras(TorchAdam(learning_rate=LR), params, big)
    stock = _run_keras(
        keras.optimizers.Adam(learning_rate=LR, beta_1=0.0, epsilon=1e-8), params, big
    )
    # (Keras rounds beta_2 to float32 in its bias correction: ~1e-5 of lr.)
    for a, b, p in zip(ours, stock, params):
        np.testing.assert_allclose((a - p) / LR, (b - p) / LR, rtol=0, atol=2e-4)


def test_defaults_are_oasis_settings():
    opt = TorchAdam()
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.0, 0.999, 1e-8)
    assert not opt.amsgrad and opt.weight_decay is None
    g_opt, d_opt = make_optimizers(1e-4, 4e-4)
    assert isinstance(g_opt, TorchAdam) and isinstance(d_opt, TorchAdam)
    assert g_opt is not d_opt
    assert np.isclose(float(g_opt.learning_rate), 1e-4)
    assert np.isclose(float(d_opt.learning_rate), 4e-4)
    assert (d_opt.beta_1, d_opt.beta_2, d_opt.epsilon) == (0.0, 0.999, 1e-8)
    g_opt, _ = make_optimizers(4e-4, 4e-4, beta_1=0.5, beta_2=0.99, epsilon=1e-6)
    assert (g_opt.beta_1, g_opt.beta_2, g_opt.epsilon) == (0.5, 0.99, 1e-6)


def test_rejects_amsgrad_and_weight_decay():
    with pytest.raises(ValueError, match="amsgrad=True"):
        TorchAdam(amsgrad=True)
    with pytest.raises(ValueError, match="weight_decay=0.01"):
        TorchAdam(weight_decay=0.01)


def test_config_round_trip():
    opt = TorchAdam(
        learning_rate=4e-4, beta_1=0.1, beta_2=0.99, epsilon=1e-7, clipnorm=1.0
    )
    config = opt.get_config()
    clone = TorchAdam.from_config(config)
    assert isinstance(clone, TorchAdam)
    assert clone.get_config() == config
    # Registered: generic deserialization finds the class, also from JSON.
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(opt)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is TorchAdam
    assert restored.get_config() == config
    assert keras.saving.get_registered_name(TorchAdam) == "oasis_tf>TorchAdam"


def test_works_in_tf_function():
    params, grads = _problem(4)
    opt = TorchAdam(learning_rate=LR)
    variables = [keras.Variable(p) for p in params]
    opt.build(variables)

    @tf.function
    def apply(step):
        opt.apply_gradients(zip(step, variables))

    for step in grads:
        apply([tf.constant(g) for g in step])
    expected, _, _ = _numpy_torch_adam(params, grads, LR, 0.0, 0.999, 1e-8)
    _assert_updates_close([v.numpy() for v in variables], expected, params, LR, 1e-4)


_MIRRORED_CODE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from oasis_tf.optimizers import TorchAdam

    rng = np.random.default_rng(0)
    shapes = [(6, 4), (9,)]
    params = [rng.normal(size=s).astype(np.float32) for s in shapes]
    def grad(s):
        g = rng.normal(size=s) * 10.0 ** rng.uniform(-10, 0, size=s)
        return g.astype(np.float32)
    grads = [[grad(s) for s in shapes] for _ in range(3)]

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        dist_vars = [keras.Variable(p) for p in params]
        dist_opt = TorchAdam(learning_rate=1e-2)
        dist_opt.build(dist_vars)

    @tf.function
    def dist_step(step):
        def replica_fn():
            halves = [g / 2 for g in step]  # summed over 2 replicas
            dist_opt.apply_gradients(zip(halves, dist_vars))
        strategy.run(replica_fn)

    single_vars = [keras.Variable(p) for p in params]
    single_opt = TorchAdam(learning_rate=1e-2)
    for step in grads:
        dist_step(step)
        single_opt.apply_gradients(zip([tf.constant(g) for g in step], single_vars))

    out = {"iterations": int(dist_opt.iterations.numpy()), "max_diff": 0.0,
           "replicas_equal": True}
    for dv, sv in zip(dist_vars, single_vars):
        copies = [v.numpy() for v in getattr(dv._value, "values", [dv._value])]
        out["num_copies"] = len(copies)
        out["replicas_equal"] &= all(np.array_equal(c, copies[0]) for c in copies)
        out["max_diff"] = max(out["max_diff"],
                              float(np.max(np.abs(dv.numpy() - sv.numpy()))))
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_matches_single_device():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED_CODE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    assert result["iterations"] == 3
    assert result["num_copies"] == 2 and result["replicas_equal"]
    # g/2 + g/2 == g exactly in float32, so the steps agree to the last bit
    # up to the all-reduce order; allow a few ulps.
    assert result["max_diff"] < 1e-6, result


def test_linear_warmup_ramps_then_stays_and_round_trips():
    schedule = LinearWarmup(4e-4, warmup_steps=4)
    values = [float(schedule(step)) for step in range(6)]
    np.testing.assert_allclose(values, [1e-4, 2e-4, 3e-4, 4e-4, 4e-4, 4e-4], rtol=1e-6)
    again = LinearWarmup.from_config(json.loads(json.dumps(schedule.get_config())))
    assert float(again(1)) == pytest.approx(2e-4)
    with pytest.raises(ValueError, match="warmup_steps >= 1"):
        LinearWarmup(1e-4, 0)


def test_make_optimizers_warmup_scales_the_first_steps():
    # beta_1 = 0: the first TorchAdam step moves a weight by lr * g / (|g| + eps') ~ lr
    g_opt, d_opt = make_optimizers(1e-4, 4e-4, warmup_steps=4)
    variable = keras.Variable(np.zeros([3], np.float32))
    d_opt.build([variable])
    moves = []
    for _ in range(5):
        before = variable.numpy().copy()
        d_opt.apply_gradients([(tf.constant([1.0, -1.0, 0.5]), variable)])
        moves.append(np.abs(variable.numpy() - before).max())
    np.testing.assert_allclose(moves, [1e-4, 2e-4, 3e-4, 4e-4, 4e-4], rtol=1e-3)
    plain, _ = make_optimizers(1e-4, 4e-4)  # default: constant rates, as the official code
    assert float(plain.learning_rate) == pytest.approx(1e-4)
    assert float(g_opt.learning_rate) == pytest.approx(2.5e-5)  # step 0 of its ramp
