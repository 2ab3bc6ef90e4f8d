"""Running OASIS training: run folders, checkpoints, callbacks and the trainer.

    from oasis_tf.training import train
    result = train(config, data_root=..., runs_root="runs")

``oasis-train`` (``oasis_tf.cli.train``) is the command line around ``train``.
"""

from oasis_tf.training.checkpoints import (
    CheckpointManager,
    NoWholeCheckpointError,
    newest_whole_checkpoint,
    optimizer_checksum,
    restore_training_state,
    save_training_state,
    verify_checkpoint,
)
from oasis_tf.training.ema import EMAStatisticsRefresh
from oasis_tf.training.init_from import InitReport, initialize_from
from oasis_tf.training.manifest import DamagedCheckpointError
from oasis_tf.training.run_dir import RunDir, create_run_dir, next_run_path
from oasis_tf.training.run_lock import RunFolderInUseError
from oasis_tf.training.stop import StopRequest
from oasis_tf.training.trainer import (TrainResult, build_model, make_dataset_fn,
                                      save_final_networks, train)

__all__ = ["CheckpointManager", "DamagedCheckpointError", "EMAStatisticsRefresh", "InitReport",
           "NoWholeCheckpointError", "RunDir", "RunFolderInUseError", "StopRequest",
           "TrainResult", "build_model", "create_run_dir", "initialize_from",
           "make_dataset_fn", "newest_whole_checkpoint", "next_run_path",
           "optimizer_checksum", "restore_training_state", "save_final_networks",
           "save_training_state", "train", "verify_checkpoint"]
