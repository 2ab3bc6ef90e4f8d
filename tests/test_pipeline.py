"""One pipeline (``oasis_tf.inference.OASISPipeline``): it loads a run folder, a .keras
file and an export alike, and a seed gives the same image through every front end that
makes images (the generate command, the studio's model, the metrics' generation loop,
the demo's figure, the training's sample grid) and through the export's
``serving_default``. Images made in another batch composition may differ by one uint8
level on a few values (``reference.assert_images_match``)."""

import types

import numpy as np
import pytest
from PIL import Image

from oasis_tf import images
from oasis_tf.inference import OASISPipeline
from reference import assert_images_match

SEED = 5


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny seeded generator (5 classes, 32x32), as a .keras file and as an export."""
    import keras

    from oasis_tf import OASISGenerator
    from oasis_tf.convert import save_network
    from oasis_tf.export import export_saved_model

    root = tmp_path_factory.mktemp("pipeline")
    keras.utils.set_random_seed(5)
    g = OASISGenerator(5, (32, 32), base_channels=4, z_dim=3, num_res_blocks=2,
                       spade_hidden=8)
    save_network(g, str(root / "g.keras"))
    rng = np.random.default_rng(1)
    label = np.repeat(np.repeat(rng.integers(0, g.num_classes, (4, 4)), 8, 0), 8, 1)
    label = label.astype(np.int32)
    Image.fromarray(label.astype(np.uint8)).save(root / "scene.png")
    export = export_saved_model(g, root / "export", "oasis", 1)
    return {"generator": g, "keras": root / "g.keras", "label": label, "root": root,
            "export": export, "from_keras": OASISPipeline.from_pretrained(root / "g.keras"),
            "from_export": OASISPipeline.from_pretrained(export)}


def test_from_pretrained_reads_every_form(model):
    keras_file, export = model["from_keras"], model["from_export"]
    for pipe in (keras_file, export):
        assert (pipe.num_classes, pipe.image_size, pipe.z_dim) == (5, (32, 32), 3)
        assert pipe.palette.shape == (5, 3) and len(pipe.class_names) == 5
    assert keras_file.generator is not None and export.generator is None
    assert export.source.startswith("export")
    label = model["label"]
    assert_images_match(export.generate(label, [SEED, SEED + 1]),
                        keras_file.generate(label, [SEED, SEED + 1]))
    with pytest.raises(ValueError, match="works on 32x32"):
        keras_file.generate(np.zeros((16, 16), np.int32), [0])
    with pytest.raises(ValueError, match="one map"):
        keras_file.generate(np.zeros((3, 32, 32), np.int32), [0, 1])


def test_a_seed_gives_the_same_image_through_every_front_end(model, run_cli, tmp_path):
    import tensorflow as tf

    from oasis_tf.demo import sample_grid
    from oasis_tf.metrics.generation import generated_batches, metrics_pipeline
    from oasis_tf.training.callbacks import SampleGrid

    g, label = model["generator"], model["label"]
    want = model["from_keras"].generate(label, [SEED])[0]
    h, w = label.shape
    made = {}
    # the generate command (a .keras file)
    out = tmp_path / "generated"
    result = run_cli("generate", "--generator", model["keras"], "--labels",
                     model["root"] / "scene.png", "--seeds", SEED, "--output_dir", out)
    assert result.returncode == 0, result.stderr
    made["oasis-generate"] = np.asarray(Image.open(out / f"scene_s{SEED}.png"))
    # the studio's model of an export (its page and /generate API show these images)
    made["studio (export)"] = model["from_export"].generate(label, [SEED])[0]
    # TF Serving's signature
    loaded = model["from_export"]._loaded  # the SavedModel the studio's pipeline runs
    made["serving_default"] = loaded.signatures["serving_default"](
        label_map=tf.constant(label[None]), seed=tf.constant([SEED], tf.int64))["image"][0]
    # the evaluation's generation loop (image 0 of the split gets seed `seed`)
    pipeline = metrics_pipeline(g)
    (_, _, fake), = generated_batches(pipeline, [{"label": label[None]}], seed=SEED)
    made["metrics"] = images.to_uint8(fake[0])
    # the demo's figure: label | real | samples; column 2 is seed `seed`
    grid = sample_grid(pipeline, label[None],
                       np.zeros((1, h, w, 3), np.float32), samples_per_label=1, seed=SEED)
    made["demo figure"] = grid[2:2 + h, -(w + 2):-2]
    # the training's sample grid: rows label | real | generator; image 0 is seed `noise_seed`
    context = types.SimpleNamespace(model=types.SimpleNamespace(generator=g,
                                                                ema_generator=None))
    grid = SampleGrid(context, {"label": label[None], "image": np.zeros((1, h, w, 3))},
                      noise_seed=SEED).render()
    made["sample grid"] = grid[2 + 2 * (h + 2):2 + 2 * (h + 2) + h, 2:2 + w]
    for name, image in made.items():
        assert_images_match(np.asarray(image), want)  # raises naming the difference
        assert np.asarray(image).shape == want.shape, name
