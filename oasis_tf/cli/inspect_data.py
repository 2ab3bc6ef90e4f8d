"""oasis-inspect-data: check your own data set and propose the configuration to train it.

    oasis-inspect-data data/my_photos                  # report + dataset_report.{json,png}
    oasis-inspect-data data/voc --output_dir reports/
    oasis-inspect-data data/cityscapes_trainids --override data.ignore_label=255
    oasis-inspect-data data/ade_like --override data.zero_is_dontcare=true

(From a checkout, `python tools/inspect_data.py` takes the same arguments.)

Finds the data set's shape (split folders or none, images/ with labels/, masks/ or
annotations/, the VOC layout), pairs photos with masks, reads the photos' headers and
every mask, and prints pairs per split, unpaired files, sizes, the label encoding,
every class with its pixel count, and the configuration `oasis-train --config folder
--data_root DIR` will use. Writes dataset_report.json and dataset_report.png (class
histogram, photo | mask overlays with the class names) into --output_dir. Every problem
is one line naming the file and what is wrong; the exit status is 1 when there is any.
See docs/own_data.md.
"""

import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
common.define_config(FLAGS, "The preset or YAML file whose 'auto' values are decided from "
                     "the data and whose other values are checked against it (default "
                     "folder).")
common.define_overrides(FLAGS)
common.define_output_dir(FLAGS, "Where dataset_report.json and dataset_report.png go "
                         "(default: the current folder).", required=False)
flags.DEFINE_bool("picture", True, "Also draw dataset_report.png.", flag_values=FLAGS)


def main(argv):
    if len(argv) != 2:
        raise common.UsageError("give the data set's folder: oasis-inspect-data DATA_ROOT")
    from oasis_tf.data import inspect_dataset

    report = inspect_dataset(argv[1], config=FLAGS.config or "folder",
                             overrides=FLAGS.override)
    print(report.format())
    json_path, picture = report.write(FLAGS.output_dir or ".", picture=FLAGS.picture)
    print(f"report: {json_path}" + (f"; picture: {picture}" if picture else ""))
    return report.exit_status


def run(argv=None):
    """The console script ``oasis-inspect-data``."""
    return common.run_command("oasis-inspect-data", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
