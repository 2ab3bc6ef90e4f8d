"""The installed commands, one module each (console scripts of ``pip install oasis_tf``;
``tools/*.py`` of a checkout call the same ``run``; each also runs as
``python -m oasis_tf.cli.<module>``):

==========================  ==========================================================
command                     module and job
==========================  ==========================================================
``oasis-train``             ``train``: train (a new run folder, resume, restartable jobs)
``oasis-generate``          ``generate``: images from label maps, resampling, strips
``oasis-evaluate``          ``evaluate``: FID, mIoU per class, MS-SSIM
``oasis-export``            ``export``: a SavedModel for TF Serving
``oasis-tflite``            ``tflite``: TFLite / LiteRT files from an export
``oasis-convert``           ``convert``: official PyTorch checkpoints to Keras
``oasis-studio``            ``studio``: paint label maps in the browser
``oasis-demo``              ``demo``: the synthetic-data demo, start to end
``oasis-inspect-data``      ``inspect_data``: check your own data set, propose a config
``oasis-serving-client``    ``serving_client``: query a TF Serving export
==========================  ==========================================================

Benchmarks (``python -m oasis_tf.cli.bench``, ``bench_data``, ``trace_cost``; in a
checkout ``tools/bench.py`` and the others). ``common`` holds the flags several
commands take and the runner; ``standalone`` what needs only the standard library.
"""
