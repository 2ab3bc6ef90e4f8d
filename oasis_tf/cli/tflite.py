r"""oasis-tflite: an oasis_tf export -> TFLite / LiteRT files, with size, latency and PSNR.

    oasis-tflite --export exports/oasis/1 --output_dir tflite/
    oasis-tflite --export runs/demo-0001/export/oasis/1 --output_dir tflite/ \
        --quantization float16 --num_runs 5

(From a checkout, `python tools/convert_tflite.py` takes the same flags.)

Writes ``<output_dir>/<model_name>_<quantization>.tflite`` (built-in ops only; the
signature ``serving_default`` takes ``label_map`` int32 [1, H, W] and ``noise``
float32 [1, H, W, z_dim] and returns ``image`` uint8 [1, H, W, 3]); with
``--report`` (default), prints one JSON line per file (size, median latency, PSNR
against the Keras generator rebuilt from the export) and writes
``tflite_report.json``. See ``oasis_tf.export.tflite``.
"""

import json
import os
import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
flags.DEFINE_string("export", None, "An export version folder <base>/<model_name>/<version>.",
                    flag_values=FLAGS)
common.define_output_dir(FLAGS, "Where to write the .tflite files.")
flags.DEFINE_list("quantization", ["float32", "float16", "int8"],
                  "Any of float32, float16, int8 (dynamic range).", flag_values=FLAGS)
flags.DEFINE_bool("report", True, "Measure size, latency and PSNR vs Keras.",
                  flag_values=FLAGS)
flags.DEFINE_integer("num_runs", 20, "Timed invokes per file (median reported).",
                     lower_bound=1, flag_values=FLAGS)
flags.mark_flag_as_required("export", flag_values=FLAGS)


def main(argv):
    common.reject_arguments(argv)
    from oasis_tf.export import (convert_tflite_variants, load_generator_from_export,
                                 read_export_metadata, tflite_report)

    name = read_export_metadata(FLAGS.export).get("model_name", "oasis")
    generator = load_generator_from_export(FLAGS.export)
    outputs = {q: os.path.join(FLAGS.output_dir, f"{name}_{q}.tflite")
               for q in FLAGS.quantization}
    convert_tflite_variants(None, outputs, generator=generator)
    reports = []
    for q, path in outputs.items():
        print(f"wrote {path}")
        if FLAGS.report:
            report = dict(quantization=q, **tflite_report(path, generator,
                                                          num_runs=FLAGS.num_runs))
            reports.append(report)
            print(json.dumps({k: report[k] for k in (
                "quantization", "size_bytes", "latency_ms", "psnr_db", "max_abs_diff",
                "backend")}))
    if reports:
        with open(os.path.join(FLAGS.output_dir, "tflite_report.json"), "w") as f:
            json.dump(reports, f, indent=1)


def run(argv=None):
    """The console script ``oasis-tflite``."""
    return common.run_command("oasis-tflite", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
