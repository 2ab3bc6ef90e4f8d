"""The oasis_tf demo: a small OASIS trained on the built-in synthetic data set.

    from oasis_tf.demo import run_demo
    paths = run_demo(out_dir="runs", steps=300)   # what `oasis-demo` / `make demo` run

What it does, in order:

1. writes the synthetic data set (procedural outdoor scenes, no download) to
   the library's one default place, ``oasis_tf.data.default_synthetic_root()``:
   ``$OASIS_TF_DATA/synthetic`` or, without that variable, the cache
   ``~/.cache/oasis_tf/synthetic`` (kept between runs: the second demo skips this step);
2. trains ``oasis_tf/configs/synthetic.yaml`` for a fixed step budget (default 1500 steps,
   10-11 minutes on 2 shared CPU cores in float32) in a new run folder
   ``runs/demo-NNNN``, printing a progress line every ``log_every`` steps; in
   ``mixed_bfloat16`` where the CPU computes bfloat16 natively (``avx512_bf16`` or
   ``amx_bf16`` in /proc/cpuinfo), else in the preset's float32; it prints which and
   why (``--precision float32`` or ``DEMO_PRECISION=float32`` to choose);
3. writes, in the run folder,
   * ``demo_samples.png``: one row per validation label map: colourised label |
     real image | 4 images from the EMA generator with different noise;
   * ``loss_curves.png``: the losses of ``metrics.jsonl`` against the step;
   * (from training) ``samples/`` grids during training, ``checkpoints/``,
     ``generator.keras`` (EMA generator), ``metrics.jsonl``, ``train.log``;
4. evaluates the EMA generator (``evaluation.json``): mIoU under a small segmenter
   trained on the real synthetic images (cached next to the data) and MS-SSIM
   diversity, each next to the real validation images' value;
5. exports it for TF Serving (``export/oasis/1``) and to TFLite (``tflite/``);
6. prints where everything is and the commands to serve and query the export.

The command is ``oasis-demo`` (``oasis_tf.cli.demo``); the test calls ``run_demo``
with a tiny budget.
"""

import time
from pathlib import Path

DEFAULT_STEPS = 1500
NUM_ROWS = 6
SAMPLES_PER_LABEL = 4


# ---------------------------------------------------------------- figures
def sample_grid(pipeline, label, image, samples_per_label=SAMPLES_PER_LABEL, seed=0):
    """uint8 grid: one row per label map: label | real | ``samples_per_label`` samples
    (column ``k``: noise seed ``seed + k``, the image every front end gives for it).

    Args:
        pipeline: an ``oasis_tf.inference.OASISPipeline``.
        label: int [N, H, W]; image: the real images [N, H, W, 3] in [-1, 1].
    """
    import numpy as np

    from oasis_tf.images import make_grid, to_uint8

    label = np.asarray(label, np.int32)
    columns = [[pipeline.colorize(x) for x in label], to_uint8(image)]
    for k in range(samples_per_label):
        columns.append(pipeline.generate(label, [seed + k] * len(label)))
    # one row per label map, a gap before the samples
    return make_grid([[col[r] for col in columns] for r in range(len(label))], gap_after=1)


# ---------------------------------------------------------------- the demo
def choose_precision(requested, cfg, overrides=()):
    """(policy, reason) of the demo's training precision; see ``run_demo``."""
    from oasis_tf.training.hardware import choose_cpu_precision

    if any(o.replace(" ", "").startswith("train.mixed_precision=") for o in overrides):
        return cfg.train.mixed_precision, "set by the train.mixed_precision override"
    if requested != "auto":
        return requested, "as requested (--precision)"
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return cfg.train.mixed_precision, "the preset's: TensorFlow runs on a GPU"
    return choose_cpu_precision("auto", default=cfg.train.mixed_precision)


def run_demo(out_dir=None, steps=DEFAULT_STEPS, data_root=None, config="synthetic",
             overrides=(), synthetic_options=None, num_rows=NUM_ROWS,
             samples_per_label=SAMPLES_PER_LABEL, console=True, evaluate=True,
             segmenter_steps=500, eval_images=None, export=True,
             tflite_quantizations=("float32", "float16"), precision="auto"):
    """Writes the synthetic data, trains, draws the demo figures; returns a dict of paths.

    Args:
        out_dir: where the run folder ``demo-NNNN`` is created (default ``runs`` in the
            current folder).
        steps: training steps.
        data_root: synthetic data folder (default
            ``oasis_tf.data.default_synthetic_root()``).
        config: preset name or YAML path (default the ``synthetic`` preset).
        overrides: extra ``section.key=value`` config overrides.
        synthetic_options: ``write_synthetic_dataset`` arguments (num_train,
            num_val, size, seed); size defaults to the config's image size.
        num_rows: label maps in ``demo_samples.png``.
        samples_per_label: generated images per label map.
        console: print progress.
        evaluate: report mIoU (tiny U-Net segmenter trained on the real synthetic
            images, cached next to the data) and MS-SSIM of the generated images next
            to those of the real validation images.
        segmenter_steps: training steps of that segmenter (first use only).
        eval_images: evaluate on at most this many validation images (None: all).
        export: export the EMA generator as a SavedModel for TF Serving and convert
            it to TFLite, and print the commands to serve and query it.
        tflite_quantizations: the TFLite variants written.
        precision: training precision policy, or "auto": ``mixed_bfloat16`` where the
            CPU computes bfloat16 natively, else the config's
            (``oasis_tf.training.hardware.choose_cpu_precision``); the config's where
            TensorFlow sees a GPU. A ``train.mixed_precision`` override wins.

    Returns:
        dict with "run_dir", "samples", "loss_curves", "generator", "checkpoint",
        "metrics", "steps", "seconds" (training + figures), "data_seconds",
        "precision" and "precision_reason".
    """
    t0 = time.time()
    import numpy as np

    from oasis_tf.config import load_config
    from oasis_tf.data import default_synthetic_root, synthetic
    from oasis_tf.images import upscale
    from oasis_tf.inference import OASISPipeline
    from oasis_tf.training import train
    from oasis_tf.training.trainer import make_dataset_fn
    from oasis_tf.training.plots import plot_losses
    from oasis_tf.training.run_dir import read_metrics

    say = print if console else (lambda *a, **k: None)
    out_dir = Path(out_dir) if out_dir is not None else Path("runs")
    data_root = data_root or default_synthetic_root()
    cfg = load_config(config, overrides=list(overrides))
    if cfg.data.dataset != "synthetic":
        raise ValueError(f"the demo trains on the synthetic data set; config {config!r} has "
                         f"data.dataset={cfg.data.dataset!r}")
    policy, reason = choose_precision(precision, cfg, overrides)
    if policy != cfg.train.mixed_precision:
        cfg = load_config(config, overrides=list(overrides) + [
            f"train.mixed_precision={policy}"])
    say(f"demo: training in {policy}: {reason} (choose with --precision float32 / "
        "mixed_bfloat16)")

    # 1. data -------------------------------------------------------------
    opts = synthetic.resolve_options(cfg.model.image_size, synthetic_options)
    t_data = time.time()
    if synthetic.synthetic_dataset_complete(data_root, **opts):
        say(f"demo: synthetic data set already in {data_root}")
    else:
        say(f"demo: writing the synthetic data set ({opts['num_train']} train + "
            f"{opts['num_val']} val scenes, {opts['size']}x{opts['size']}) to {data_root} ...")
        synthetic.write_synthetic_dataset(data_root, **opts)
    data_seconds = time.time() - t_data
    say(f"demo: data ready in {data_seconds:.1f} s")

    # the trainer's own dataset function (all data settings of the config, load_size included)
    dataset_fn = make_dataset_fn(cfg, data_root, synthetic_options=opts)

    # 2. training ---------------------------------------------------------
    say(f"demo: training {steps} steps (batch {cfg.train.batch_size}, "
        f"{cfg.model.image_size[0]}x{cfg.model.image_size[1]}); a progress line every "
        f"{cfg.train.log_every} steps")
    t_train = time.time()
    result = train(cfg, data_root=data_root, runs_root=str(out_dir), max_steps=int(steps),
                   dataset_fn=dataset_fn, name="demo", console=console)
    train_seconds = time.time() - t_train
    run_dir = Path(result.run_dir)
    if result.failed:
        raise RuntimeError(f"demo training stopped: {result.failure} (run folder {run_dir})")

    # 3. figures ----------------------------------------------------------
    generator_path = run_dir / "generator.keras"
    pipeline = OASISPipeline.from_pretrained(run_dir)  # generator.keras, checked
    generator = pipeline.generator
    batch = next(iter(dataset_fn(split="val", training=False, batch_size=num_rows)))
    grid = sample_grid(pipeline, batch["label"].numpy(), batch["image"].numpy(),
                       samples_per_label=samples_per_label, seed=cfg.train.seed)
    from PIL import Image
    samples_path = run_dir / "demo_samples.png"
    factor = max(1, 256 // max(cfg.model.image_size))  # small images: enlarge for viewing
    Image.fromarray(upscale(grid, min(factor, 4))).save(samples_path)

    records = read_metrics(run_dir / "metrics.jsonl")
    curves_path = run_dir / "loss_curves.png"
    plot_losses(records, curves_path,
                reference=(float(np.log(cfg.model.num_classes + 1)),
                           f"ln({cfg.model.num_classes + 1}): uniform D"))
    # 4. evaluation ------------------------------------------------------
    report = None
    if evaluate:
        from oasis_tf.metrics import evaluate_synthetic, write_report

        say("demo: evaluating the EMA generator (mIoU with a small segmenter trained on "
            "the real synthetic images, MS-SSIM diversity) ...")
        report = evaluate_synthetic(generator, data_root, max_images=eval_images,
                                    segmenter_steps=segmenter_steps,
                                    num_diversity_samples=min(50, eval_images or 50),
                                    verbose=console)
        write_report(report, run_dir / "evaluation.json")

    # 5. deployment -------------------------------------------------------
    export_dir = tflite_paths = None
    if export:
        from oasis_tf.export import convert_tflite_variants, export_saved_model

        export_dir = export_saved_model(generator, run_dir / "export", model_name="oasis",
                                        version=1)
        tflite_paths = convert_tflite_variants(
            export_dir, {q: run_dir / "tflite" / f"oasis_{q}.tflite"
                         for q in tflite_quantizations}, generator=generator)

    seconds = time.time() - t0
    out = {"run_dir": str(run_dir), "samples": str(samples_path),
           "evaluation": report, "export_dir": str(export_dir) if export_dir else None,
           "tflite": tflite_paths,
           "loss_curves": str(curves_path), "generator": str(generator_path),
           "checkpoint": result.last_checkpoint, "metrics": str(run_dir / "metrics.jsonl"),
           "train_log": str(run_dir / "train.log"), "sample_dir": str(run_dir / "samples"),
           "steps": result.step, "seconds": seconds, "train_seconds": train_seconds,
           "data_seconds": data_seconds, "final_losses": result.logs,
           "precision": policy, "precision_reason": reason}
    say("")
    say(f"demo: done: {result.step} steps in {train_seconds / 60:.1f} min of training "
        f"in {policy} ({seconds / 60:.1f} min in all)")
    say(f"  run folder       {run_dir}")
    say(f"  samples          {samples_path}  (rows: label | real | {samples_per_label} EMA "
        f"samples with different noise)")
    say(f"  loss curves      {curves_path}")
    say(f"  grids in training {run_dir / 'samples'}")
    say(f"  generator        {generator_path}")
    say(f"  last checkpoint  {result.last_checkpoint}")
    say(f"  data             {data_root}")
    if result.logs:
        say("  final losses     " + ", ".join(f"{k} {v:.3f}" for k, v in result.logs.items()))
    if report is not None:
        say(f"  evaluation       {run_dir / 'evaluation.json'}: mIoU generated "
            f"{report.get('miou', float('nan')):.3f} (real {report.get('miou_real', float('nan')):.3f}),"
            f" MS-SSIM generated {report.get('ms_ssim', float('nan')):.3f} (real pairs "
            f"{report.get('ms_ssim_real_pairs', float('nan')):.3f})")
    if export_dir is not None:
        base = Path(export_dir).parent
        say(f"  SavedModel       {export_dir}")
        for q, path in (tflite_paths or {}).items():
            say(f"  TFLite {q:<9} {path}")
        say("")
        say("Paint label maps in the browser (OASIS Studio, docs/studio.md):")
        say(f"  oasis-studio --model {run_dir}     (in a checkout: make studio)")
        say("")
        say("Serve it with TF Serving and query it:")
        say(f'  docker run --rm -p 8501:8501 -v "{base}:/models/oasis" -e MODEL_NAME=oasis '
            "tensorflow/serving")
        say("  oasis-serving-client --labels <label PNG folder> "
            "--signature generate_png --seeds 0,1 --output_dir out/")
        say("  curl -X POST http://localhost:8501/v1/models/oasis:predict -d "
            "'{\"instances\": [{\"label_map\": <HxW class ids>, \"seed\": 7}]}'")
    return out
