"""Train OASIS.

    python tools/train.py --config synthetic --data_root data/synthetic
    python tools/train.py --config cityscapes --data_root /data/cityscapes \
        --override train.batch_size=16 --override train.lr_g=4e-4
    python tools/train.py --resume runs/synthetic-0003          # continue a killed run
    python tools/train.py --config ade20k --backup_dir runs/ade20k-job   # restartable job
    python tools/train.py --config synthetic --dry_run          # plan + one step, no files
    python tools/train.py --config ade20k --init_from checkpoints/oasis_ade20k_pretrained/models
                                                                 # fine-tune published weights
    python tools/train.py --config ade20k --strategy mirrored   # all local GPUs
    TF_CONFIG='{"cluster": {"worker": ["h0:12345", "h1:12345"]},
                "task": {"type": "worker", "index": 0}}' \
        python tools/train.py --config ade20k --strategy multiworker   # on every machine

Creates a numbered run folder under --run_dir (config.yaml, train.log,
metrics.jsonl, samples/, checkpoints/, tensorboard/, generator.keras at the end)
and prints it at the end. --resume continues the run folder from its newest
checkpoint with the run's own config.yaml (plus any --override) and the data
folder it records (an explicit --data_root replaces it, logged). A damaged newest
checkpoint is named and skipped (the newest whole one is used). Exit status 1
when a NaN / Inf loss stopped the run (the last good checkpoint is kept) or when
no checkpoint of a --resume is whole (each one found is listed with its problem).

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

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Preset name (ade20k, cityscapes, coco_stuff, synthetic) "
                    "or a YAML path. Default: the run's config.yaml with --resume, else "
                    "synthetic.")
flags.DEFINE_string("data_root", None, "Dataset folder (default: data.root of the config; "
                    "with --resume the run's own; stored absolute in the run's config.yaml).")
flags.DEFINE_string("run_dir", "runs", "Folder the numbered run folders are created in.")
flags.DEFINE_multi_string("override", [], "Config override section.key=value, repeatable "
                          "(e.g. train.lr_g=2e-4).")
flags.DEFINE_integer("max_steps", None, "Total step budget (default: num_epochs epochs).")
flags.DEFINE_bool("dry_run", False, "Print the plan, build everything, run one step; "
                  "write nothing.")
flags.DEFINE_string("resume", None, "Run folder to continue from its newest checkpoint.")
flags.DEFINE_string("backup_dir", None, "Fixed run folder: created on the first start, "
                    "continued from its newest checkpoint when the same command runs again "
                    "(restartable jobs; like keras.callbacks.BackupAndRestore).")
flags.DEFINE_string("init_from", None, "Fine-tune: start from the weights in this folder "
                    "(an official models/ folder with best_G.pth, best_D.pth, best_EMA.pth; "
                    "a folder of .keras files; or a run folder) with fresh optimizers at "
                    "step 0. A different class count re-initialises the class-dependent "
                    "layers.")
flags.DEFINE_string("fid_extractor", None, "FID every train.fid_every steps: "
                    "standard:<classify_image_graph_def.pb|tgz>, keras[:<weights.h5>] or auto.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker"],
                  "tf.distribute strategy: one device, all local GPUs (MirroredStrategy) or "
                  "several machines configured by TF_CONFIG (MultiWorkerMirroredStrategy).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from oasis_tf.config import load_config  # imported late: flags parse before TF starts
    from oasis_tf.training import train
    from oasis_tf.training.distribute import create_strategy

    strategy = create_strategy(FLAGS.strategy)  # first: before any other TensorFlow op

    if FLAGS.resume is not None and FLAGS.backup_dir is not None:
        raise app.UsageError("give --resume or --backup_dir, not both")
    if FLAGS.resume is not None and FLAGS.init_from is not None:
        raise app.UsageError("give --resume or --init_from, not both (a resume continues "
                             "from the run's own checkpoint)")
    saved = FLAGS.resume or FLAGS.backup_dir
    if saved is not None and os.path.exists(os.path.join(saved, "config.yaml")):
        source = FLAGS.config or os.path.join(saved, "config.yaml")
    elif FLAGS.resume is not None:
        source = FLAGS.config or os.path.join(FLAGS.resume, "config.yaml")
    else:
        source = FLAGS.config or "synthetic"
    config = load_config(source, overrides=FLAGS.override)
    result = train(config, data_root=FLAGS.data_root, runs_root=FLAGS.run_dir,
                   resume=FLAGS.resume, max_steps=FLAGS.max_steps, dry_run=FLAGS.dry_run,
                   strategy=strategy, fid_extractor=FLAGS.fid_extractor,
                   backup_dir=FLAGS.backup_dir, init_from=FLAGS.init_from)
    if result.failed:
        print(f"train: stopped: {result.failure}; last good checkpoint: "
              f"{result.last_checkpoint}", file=sys.stderr)
        print(result.run_dir)
        sys.exit(1)
    if result.run_dir is not None:
        print(result.run_dir)


def run():
    from oasis_tf.training.checkpoints import DamagedCheckpointError, NoWholeCheckpointError

    try:
        app.run(main)
    except (NoWholeCheckpointError, DamagedCheckpointError) as error:
        print(f"train: error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run()
