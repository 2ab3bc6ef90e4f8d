"""Convert an oasis_tf export to TFLite / LiteRT and report size, latency and PSNR.

    python tools/convert_tflite.py --export exports/oasis/1 --output_dir tflite/ \
        --quantization float32,float16,int8 --report

Writes ``<output_dir>/<model_name>_<quantization>.tflite`` (built-in ops only; the
signature ``serving_default`` takes ``label_map`` int32 [1, H, W] and ``noise``
float32 [1, H, W, z_dim] and returns ``image`` uint8 [1, H, W, 3]); with
``--report``, prints one JSON line per file (size, median latency, PSNR against
the Keras generator rebuilt from the export) and writes ``tflite_report.json``.
See ``oasis_tf.export.tflite``.
"""

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("export", None, "An export version folder <base>/<model_name>/<version>.")
flags.DEFINE_string("output_dir", None, "Where to write the .tflite files.")
flags.DEFINE_list("quantization", ["float32", "float16", "int8"],
                  "Any of float32, float16, int8 (dynamic range).")
flags.DEFINE_bool("report", True, "Measure size, latency and PSNR vs Keras.")
flags.DEFINE_integer("num_runs", 20, "Timed invokes per file (median reported).")
flags.mark_flags_as_required(["export", "output_dir"])


def main(argv):
    del argv
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


def run():
    try:
        app.run(main)
    except Exception as error:  # noqa: BLE001 - a clean message for the CLI
        print(f"convert_tflite: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
