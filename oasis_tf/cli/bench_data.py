"""Input-pipeline benchmark: images/s of the training pipeline from files.

    python tools/bench_data.py                       # 256x256 and 256x512, JSON on stdout
    python tools/bench_data.py --sizes 256x256,256x512 --num_images 256 --passes 5
    python tools/bench_data.py --root /data/ADEChallengeData2016 --layout ade20k
    python -m oasis_tf.cli.bench_data --sizes 256x256      # the same, installed

Without --root it writes a temporary data set in the ADE20K layout (JPEG images
and PNG label maps, 512x384 sources for square outputs and 1024x512 for the
256x512 output, so every example is decoded AND resized) and deletes it at the
end. Each output size is timed as ``--passes`` full passes over the training
pipeline (shuffle, decode, bicubic / nearest resize, flip, LabelMix bits,
batching) after one warm-up pass; the result is the median images/s.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

from absl import flags

from oasis_tf.cli import common
from oasis_tf.cli.standalone import height_width, parse_image_size

SOURCE_SIZES = {(256, 256): (384, 512), (256, 512): (512, 1024)}  # output -> source (H, W)


def write_fake_ade20k(root, num_images, source_size, num_classes=151, seed=0, quality=90):
    """Writes ``num_images`` JPEG images + PNG labels (blocky regions) in the ADE20K
    training layout under ``root``; returns ``root``."""
    import numpy as np
    from PIL import Image

    h, w = source_size
    rng = np.random.default_rng(seed)
    img_dir = os.path.join(root, "images", "training")
    lab_dir = os.path.join(root, "annotations", "training")
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(lab_dir, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(num_images):
        cells = rng.integers(0, num_classes, size=(8, 8))
        label = cells[(yy * 8) // h, (xx * 8) // w].astype(np.uint8)
        base = rng.integers(0, 256, size=(num_classes, 3))[label]
        noise = rng.normal(0, 20, size=(h, w, 3))
        image = np.clip(base + noise + 40 * np.sin(xx / 17.0)[..., None], 0, 255)
        name = f"ADE_train_{i:08d}"
        Image.fromarray(image.astype(np.uint8)).save(os.path.join(img_dir, name + ".jpg"),
                                                     quality=quality)
        Image.fromarray(label, "L").save(os.path.join(lab_dir, name + ".png"))
    return root


def bench(root, layout, image_size, batch_size=32, passes=5, num_parallel_calls="autotune",
          num_classes=None, source=None):
    """Median images/s over ``passes`` timed passes (after a warm-up pass)."""
    from oasis_tf.data import load_dataset

    kwargs = {}
    if source is not None:
        kwargs["source"] = source
    ds = load_dataset(layout, root, split="train", image_size=image_size,
                      batch_size=batch_size, training=True, num_classes=num_classes,
                      num_parallel_calls=num_parallel_calls, shuffle_buffer=1000, **kwargs)
    for _ in ds:  # warm-up: autotune, file cache
        pass
    rates, cpu = [], []
    for _ in range(passes):
        c0 = _cpu_seconds()
        start = time.perf_counter()
        n = 0
        for batch in ds:
            n += int(batch["image"].shape[0])
        rates.append(n / (time.perf_counter() - start))
        cpu.append((_cpu_seconds() - c0) / n)
    cpu_ms = 1000 * statistics.median(cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"images_per_sec": round(statistics.median(rates), 1),
            "passes": [round(r, 1) for r in rates], "images_per_pass": n,
            "cpu_ms_per_image": round(cpu_ms, 2),
            # what the process's CPU time allows on all of this machine's cores, when
            # no other process competes (an upper bound; the measured rate above is
            # lower when the machine is shared)
            "cpu_bound_images_per_sec": round(cores * 1000 / cpu_ms, 1)}


def _cpu_seconds():
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


FLAGS = common.new_flags()
flags.DEFINE_list("sizes", ["256x256", "256x512"], "Output sizes HxW.", flag_values=FLAGS)
flags.DEFINE_string("root", None, "An existing data set (default: a temporary fake ADE20K "
                    "folder).", flag_values=FLAGS)
flags.DEFINE_string("layout", "ade20k", "Layout of --root.", flag_values=FLAGS)
common.define_num_classes(FLAGS, "Classes of --root (default: the layout's).")
flags.DEFINE_integer("num_images", 256, "Images of the temporary data set per size.",
                     lower_bound=1, flag_values=FLAGS)
common.define_batch_size(FLAGS, 32, "Batch size.")
flags.DEFINE_integer("passes", 5, "Timed passes (after one warm-up pass).", lower_bound=1,
                     flag_values=FLAGS)
flags.DEFINE_string("num_parallel_calls", "autotune", "tf.data parallelism: autotune or N.",
                    flag_values=FLAGS)
flags.DEFINE_enum("source", None, ["files", "tfds"], "With --root: the folders (files) or "
                  "a TFDS data_dir with --layout the TFDS name.", flag_values=FLAGS)


def main(argv):
    common.reject_arguments(argv)
    import tensorflow as tf

    npc = FLAGS.num_parallel_calls
    npc = int(npc) if npc != "autotune" else "autotune"
    results = {"cpu_count": os.cpu_count(), "tensorflow": tf.__version__,
               "batch_size": FLAGS.batch_size, "results": []}
    for text in FLAGS.sizes:
        size = height_width(parse_image_size(text, "--sizes"))
        tmp = None
        try:
            if FLAGS.root is None:
                tmp = tempfile.mkdtemp(prefix="oasis_bench_")
                src = SOURCE_SIZES.get(size, (size[0] * 3 // 2, size[1] * 3 // 2))
                t = time.time()
                write_fake_ade20k(tmp, FLAGS.num_images, src)
                print(f"bench_data: wrote {FLAGS.num_images} JPEG/PNG pairs of {src[1]}x{src[0]} "
                      f"in {time.time() - t:.1f} s", file=sys.stderr)
                root, layout, source_desc = tmp, "ade20k", f"fake ADE20K JPEG {src[1]}x{src[0]}"
            else:
                root, layout, source_desc = FLAGS.root, FLAGS.layout, FLAGS.root
            r = bench(root, layout, size, batch_size=FLAGS.batch_size, passes=FLAGS.passes,
                      num_parallel_calls=npc, num_classes=FLAGS.num_classes,
                      source=FLAGS.source)
            r.update({"image_size": f"{size[0]}x{size[1]}", "source": source_desc})
            print(f"bench_data: {size[0]}x{size[1]}: {r['images_per_sec']} images/s "
                  f"(passes {r['passes']}); {r['cpu_ms_per_image']} ms CPU per image",
                  file=sys.stderr)
            results["results"].append(r)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(results, indent=2))


def run(argv=None):
    """``python -m oasis_tf.cli.bench_data`` (and ``tools/bench_data.py``)."""
    return common.run_command("bench_data", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
