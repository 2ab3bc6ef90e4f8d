"""Builds an oasis TFDS data set from its official layout (like `tfds build`):

    python -m oasis_tf.data.build_tfds oasis_ade20k \\
        --manual_dir /data/ADEChallengeData2016 --data_dir ~/tensorflow_datasets

Names: oasis_ade20k, oasis_cityscapes, oasis_coco_stuff, oasis_folder (see
`oasis_tf.data.tfds_builders`).
"""

from oasis_tf.data.tfds_builders import main

if __name__ == "__main__":
    main()
