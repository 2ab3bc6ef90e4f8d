"""Fine-tuning (``--init_from``): from the official reference state dicts (same and
other class count), from .keras files and from a run folder; which tensors are kept."""

import logging
import shutil

import numpy as np
import pytest

import oasis_tf
from oasis_tf.config import load_config
from oasis_tf.convert import export_state_dict, read_state_dict, write_state_dict_npz
from oasis_tf.convert.saving import save_network
from oasis_tf.training import CheckpointManager, build_model, initialize_from, train
from oasis_tf.training.init_from import class_dependent_layers

# The fine-tuning runs step eagerly: what is checked is which tensors they start from
# (tests/conftest.py's `eager_steps` and `no_grappler` say why).
pytestmark = pytest.mark.usefixtures("eager_steps")

# The `small` reference fixture: 13 classes, 64x64, G width 8, z_dim 64, D base 16.
SMALL = ["model.num_classes=13", "model.image_size=[64,64]", "model.g_channels=8",
         "model.z_dim=64", "model.num_res_blocks=6", "model.d_channels=16",
         "model.spade_hidden=128", "data.dataset=ade20k", "data.load_size=64",
         "data.crop_size=64", "train.batch_size=2", "train.log_every=1",
         "train.sample_every=100", "train.checkpoint_every=100", "train.init_gain=0.02",
         "train.ema_bn_refresh_batches=1", "train.ema_decay=0.999"]


@pytest.fixture(scope="module")
def official_folder(reference_dir, tmp_path_factory):
    """An official models folder: best_G.pth, best_D.pth and a distinct best_EMA.npz."""
    folder = tmp_path_factory.mktemp("official") / "models"
    folder.mkdir()
    shutil.copy(reference_dir / "small" / "G_state.pth", folder / "best_G.pth")
    shutil.copy(reference_dir / "small" / "D_state.pth", folder / "best_D.pth")
    ema = {k: (v * np.float32(0.5) if v.dtype == np.float32 else v)
           for k, v in read_state_dict(folder / "best_G.pth").items()}
    write_state_dict_npz(ema, folder / "best_EMA.npz")
    return folder


def _nets(model):
    return dict(generator=model.generator, discriminator=model.discriminator,
                ema_generator=model.ema_generator)


def _batch(num_classes, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, num_classes, (2, 8, 8))
    return dict(image=rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32),
                label=np.repeat(np.repeat(coarse, 8, 1), 8, 2).astype(np.int32))


@pytest.mark.slow
def test_same_class_count_keeps_every_tensor_then_fine_tunes(official_folder):
    model = build_model(load_config("synthetic", SMALL))
    report = initialize_from(model, official_folder)
    assert report.kind == "official" and report.source_num_classes == 13
    assert report.ema_from == "source EMA"
    assert all(not paths for paths in report.reinitialized.values())
    expected = dict(generator=read_state_dict(official_folder / "best_G.pth"),
                    discriminator=read_state_dict(official_folder / "best_D.pth"),
                    ema_generator=read_state_dict(official_folder / "best_EMA.npz"))
    for role, network in _nets(model).items():
        ours = export_state_dict(network)
        assert ours.keys() == expected[role].keys()
        for key, value in expected[role].items():
            np.testing.assert_array_equal(ours[key], value, err_msg=f"{role} {key}")
    assert report.kept["generator"] == len(model.generator.weights)
    # fine-tune: fresh optimizers from step 0, a few finite steps
    assert int(model.g_optimizer.iterations.numpy()) == 0
    for step in range(2):
        logs = model.train_step(_batch(13, step))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert int(model.d_optimizer.iterations.numpy()) == 2


@pytest.mark.slow
def test_other_class_count_reinitialises_only_the_class_layers(official_folder, tmp_path,
                                                               caplog):
    config = load_config("synthetic", SMALL + ["model.num_classes=9"])
    fresh = build_model(config)
    initial = {role: {v.path: v.numpy() for v in net.weights}
               for role, net in _nets(fresh).items()}
    source = dict(generator=oasis_tf.convert.load_official_generator(
                      str(official_folder / "best_G.pth"), image_size=(64, 64)),
                  discriminator=oasis_tf.convert.load_official_discriminator(
                      str(official_folder / "best_D.pth")),
                  ema_generator=oasis_tf.convert.load_official_generator(
                      str(official_folder / "best_EMA.npz"), image_size=(64, 64)))
    model = build_model(config)
    with caplog.at_level(logging.INFO, logger="oasis_tf.training"):
        report = initialize_from(model, official_folder)
    for role, network in _nets(model).items():
        class_paths = {v.path for layer in class_dependent_layers(network)
                       for v in layer.weights}
        assert set(report.reinitialized[role]) == class_paths
        src = {v.path: v.numpy() for v in source[role].weights}
        for variable in network.weights:
            if variable.path in class_paths:   # fresh: the new model's initial values
                np.testing.assert_array_equal(variable.numpy(),
                                              initial["generator" if role == "ema_generator"
                                                      else role][variable.path])
            else:                              # kept from the source
                np.testing.assert_array_equal(variable.numpy(), src[variable.path],
                                              err_msg=f"{role} {variable.path}")
    names = sorted(p.rsplit("/", 1)[0] for p in report.reinitialized["generator"])
    assert "fc" in names and "body_0/norm_0/mlp_shared" in names
    assert report.reinitialized["discriminator"] == ["layer_up_last/bias",
                                                     "layer_up_last/kernel"]
    text = caplog.text
    assert "13 classes, this run 9" in text and "layer_up_last" in text and "fc" in text

    # the trainer's hook: a short fine-tuning run from the official folder
    from test_training_run import _in_memory_dataset_fn

    result = train(config, runs_root=str(tmp_path), max_steps=2, console=False,
                   init_from=str(official_folder),
                   dataset_fn=_in_memory_dataset_fn(examples=4, num_classes=9))
    assert not result.failed and result.step == 2
    log = (result.run_dir / "train.log").read_text()
    assert "initialised from" in log and "re-initialised" in log


def _tiny_config(num_classes=5):
    return load_config("synthetic", [
        f"model.num_classes={num_classes}", "model.num_res_blocks=2", "model.g_channels=2",
        "model.d_channels=4", "model.z_dim=4", "model.spade_hidden=8"])


def _assert_same(a, b):
    for x, y in zip(a.weights, b.weights):
        assert x.path == y.path
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.path)


def test_keras_files_and_run_folder(tmp_path):
    source = build_model(_tiny_config())
    for network in (source.generator, source.discriminator):  # distinct from a fresh init
        for v in network.trainable_weights:
            v.assign(v.numpy() + 0.25)
    folder = tmp_path / "keras"
    save_network(source.generator, folder / "generator.keras")
    save_network(source.discriminator, folder / "discriminator.keras")
    model = build_model(_tiny_config())
    report = initialize_from(model, folder)
    assert report.kind == "keras" and report.ema_from == "copy of G"
    _assert_same(model.generator, source.generator)
    _assert_same(model.discriminator, source.discriminator)
    _assert_same(model.ema_generator, source.generator)

    # a run folder: its newest checkpoint, with the EMA it holds
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    from oasis_tf.config import save_config
    save_config(_tiny_config(), run / "config.yaml")
    CheckpointManager(run / "checkpoints", source).save(7)
    model = build_model(_tiny_config(3))
    report = initialize_from(model, run)
    assert report.kind == "run" and report.ema_from == "source EMA"
    assert report.source_num_classes == 5
    assert int(model.g_optimizer.iterations.numpy()) == 0


def test_errors_name_the_problem(tmp_path):
    model = build_model(_tiny_config())
    with pytest.raises(FileNotFoundError, match="found no weights"):
        initialize_from(model, tmp_path)
    other = build_model(load_config("synthetic", [
        "model.num_classes=5", "model.num_res_blocks=2", "model.g_channels=4",
        "model.d_channels=4", "model.z_dim=4", "model.spade_hidden=8"]))
    save_network(other.generator, tmp_path / "generator.keras")
    save_network(other.discriminator, tmp_path / "discriminator.keras")
    with pytest.raises(ValueError, match="mis-shaped.*body_0/conv_0/kernel"):
        initialize_from(model, tmp_path)
