r"""oasis-train: train OASIS; every run gets its own folder.

    oasis-train --config synthetic                       # the built-in data, no download
    oasis-train --config folder --data_root data/my_photos   # your own data set
    oasis-train --config ade20k --data_root /data/ADEChallengeData2016
    oasis-train --config cityscapes --data_root /data/cityscapes \
        --override train.batch_size=16 --override train.lr_g=4e-4
    oasis-train --resume runs/synthetic-0003             # continue a killed run
    oasis-train --config ade20k --backup_dir runs/ade20k-job   # a restartable job
    oasis-train --config synthetic --dry_run             # the plan + one step, no files
    oasis-train --config ade20k --init_from checkpoints/oasis_ade20k_pretrained/models
                                                         # fine-tune the published weights
    oasis-train --config ade20k --strategy mirrored      # all local GPUs
    TF_CONFIG='{"cluster": {"worker": ["h0:12345", "h1:12345"]},
                "task": {"type": "worker", "index": 0}}' \
        oasis-train --config ade20k --strategy multiworker   # on every machine

(From a checkout, `python tools/train.py` takes the same flags.)

Creates a numbered run folder under --run_dir (config.yaml, train.log,
metrics.jsonl, samples/, checkpoints/, tensorboard/, generator.keras at the end)
and prints it at the end. --resume continues the run folder from its newest
checkpoint with the run's own config.yaml (plus any --override) and the data
folder it records (an explicit --data_root replaces it, logged). A damaged newest
checkpoint is named and skipped (the newest whole one is used). Exit status 1
when a NaN / Inf loss stopped the run (the last good checkpoint is kept) or when
no checkpoint of a --resume is whole (each one found is listed with its problem).
A --resume at or past the budget finishes a run that was killed before its end
(final networks, manifest.json) and otherwise does nothing.

SIGTERM (what Kubernetes, Slurm and spot machines send before they kill) or Ctrl+C:
the step in flight ends, a checkpoint of that step is written, the log says
"stopped by SIGTERM at step N; checkpoint ...; continue with --resume RUN", and the
exit status is 128 + the signal number (143 for SIGTERM, 130 for Ctrl+C). A second
signal stops at once. One process per run folder: a second one on a folder in use
(--resume, --backup_dir) exits with status 1 naming the host and PID that hold it
(train.lock); the lock of a killed process is taken over. A full disk is one line
naming what could not be written, where, the space free and the last whole
checkpoint (exit status 1).

--strategy multiworker: every worker runs this command with its own TF_CONFIG;
the chief (worker 0) creates the run folder and writes checkpoints, samples,
metrics and TensorBoard events; the others write only <run_dir>/<name>-worker-<i>.log
(or <resume>/worker-<i>.log). The global batch (train.batch_size) is split over
all replicas and the data files are sharded per worker. After a worker dies,
kill the job and restart every worker with --resume <the chief's run folder>
(storage shared by the workers): all of them restore the chief's newest checkpoint.

--backup_dir DIR: the run folder is DIR itself (not numbered): the first start
creates it, every later start of the same command continues from its newest
checkpoint (the keras.callbacks.BackupAndRestore pattern, for clusters that restart
failed jobs with their original command line).
"""

import os
import sys

from absl import flags

from oasis_tf.cli import common

FLAGS = common.new_flags()
common.define_config(FLAGS, "Preset name (ade20k, cityscapes, coco_stuff, folder, synthetic) "
                     "or a YAML path. Default: the run's config.yaml with --resume, else "
                     "synthetic.")
common.define_data_root(FLAGS, "Data set folder (default: data.root of the config; with "
                        "--resume the run's own; stored absolute in the run's config.yaml).")
flags.DEFINE_string("run_dir", "runs", "Folder the numbered run folders are created in.",
                    flag_values=FLAGS)
common.define_overrides(FLAGS)
flags.DEFINE_integer("max_steps", None, "Total step budget (default: num_epochs epochs).",
                     flag_values=FLAGS)
flags.DEFINE_bool("dry_run", False, "Print the plan, build everything, run one step; "
                  "write nothing.", flag_values=FLAGS)
flags.DEFINE_string("resume", None, "Run folder to continue from its newest checkpoint.",
                    flag_values=FLAGS)
flags.DEFINE_string("backup_dir", None, "Fixed run folder: created on the first start, "
                    "continued from its newest checkpoint when the same command runs again "
                    "(restartable jobs; like keras.callbacks.BackupAndRestore).",
                    flag_values=FLAGS)
flags.DEFINE_string("init_from", None, "Fine-tune: start from the weights in this folder "
                    "(an official models/ folder with best_G.pth, best_D.pth, best_EMA.pth; "
                    "a folder of .keras files; or a run folder) with fresh optimizers at "
                    "step 0. A different class count re-initialises the class-dependent "
                    "layers.", flag_values=FLAGS)
flags.DEFINE_string("fid_extractor", None, "FID every train.fid_every steps: "
                    "standard:<classify_image_graph_def.pb|tgz>, keras[:<weights.h5>] or "
                    "auto.", flag_values=FLAGS)
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker"],
                  "tf.distribute strategy: one device, all local GPUs (MirroredStrategy) or "
                  "several machines configured by TF_CONFIG (MultiWorkerMirroredStrategy).",
                  flag_values=FLAGS)


# what a cluster sends before it kills (SIGTERM) and Ctrl+C: a checkpoint, then exit
STOP_SIGNALS = ("SIGTERM", "SIGINT")


def stopped_status(reason):
    """The exit status of a run stopped by ``reason``: 128 + the signal number, as a
    shell reports a process ended by that signal (143 SIGTERM, 130 SIGINT)."""
    import signal

    try:
        return 128 + int(signal.Signals[str(reason)])
    except KeyError:
        return 128 + int(signal.SIGTERM)


def config_source(config, resume, backup_dir):
    """The preset or YAML file a run starts from: ``config`` when given; else the run's
    own ``config.yaml`` (``resume``, or a ``backup_dir`` that has one); else
    "synthetic"."""
    saved = resume or backup_dir
    if config:
        return config
    if saved is not None and (resume is not None
                              or os.path.exists(os.path.join(saved, "config.yaml"))):
        return os.path.join(saved, "config.yaml")
    return "synthetic"


def main(argv):
    common.reject_arguments(argv)
    from oasis_tf.config import load_config
    from oasis_tf.training import train
    from oasis_tf.training.distribute import create_strategy

    strategy = create_strategy(FLAGS.strategy)  # first: before any other TensorFlow op

    if FLAGS.resume is not None and FLAGS.backup_dir is not None:
        raise common.UsageError("give --resume or --backup_dir, not both")
    if FLAGS.resume is not None and FLAGS.init_from is not None:
        raise common.UsageError("give --resume or --init_from, not both (a resume continues "
                                "from the run's own checkpoint)")
    config = load_config(config_source(FLAGS.config, FLAGS.resume, FLAGS.backup_dir),
                         overrides=FLAGS.override)
    result = train(config, data_root=FLAGS.data_root, runs_root=FLAGS.run_dir,
                   resume=FLAGS.resume, max_steps=FLAGS.max_steps, dry_run=FLAGS.dry_run,
                   strategy=strategy, fid_extractor=FLAGS.fid_extractor,
                   backup_dir=FLAGS.backup_dir, init_from=FLAGS.init_from,
                   stop_signals=STOP_SIGNALS)
    if result.stopped:  # checkpointed; the log says how to continue
        if result.run_dir is not None:
            print(result.run_dir)
        return stopped_status(result.stopped)
    if result.failed:
        print(f"oasis-train: stopped: {result.failure}; last good checkpoint: "
              f"{result.last_checkpoint}", file=sys.stderr)
        print(result.run_dir)
        return 1
    if result.run_dir is not None:
        print(result.run_dir)
    return 0


def run(argv=None):
    """The console script ``oasis-train``."""
    return common.run_command("oasis-train", __doc__, FLAGS, main, argv)


if __name__ == "__main__":
    sys.exit(run())
