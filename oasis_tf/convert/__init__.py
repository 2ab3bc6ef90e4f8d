"""Official OASIS PyTorch checkpoints -> oasis_tf networks (and back)."""

from oasis_tf.convert.official import (
    CheckpointMismatchError, assign_state_dict, check_state_dict, detect_network,
    export_state_dict, infer_discriminator_config, infer_generator_config,
    load_official_discriminator, load_official_generator)
from oasis_tf.convert.saving import save_network
from oasis_tf.convert.state_dict_io import read_state_dict, write_state_dict_npz

__all__ = ["CheckpointMismatchError", "assign_state_dict", "check_state_dict",
           "detect_network", "export_state_dict", "infer_discriminator_config",
           "infer_generator_config", "load_official_discriminator",
           "load_official_generator", "read_state_dict", "save_network",
           "write_state_dict_npz"]
