"""OASIS Studio: a Gradio page to paint label maps and generate images.

``build_app(pipeline)`` / ``launch`` (``oasis_tf.studio.app``) make and serve the page
for an ``oasis_tf.inference.OASISPipeline``; ``oasis_tf.studio.canvas`` turns the
painted canvas into class ids and gives the example maps (Gradio is the optional extra
``studio``: ``pip install ".[studio]"``).
"""

from oasis_tf.studio.app import build_app, launch
from oasis_tf.studio.canvas import canvas_scale, example_label_maps, label_from_canvas, newest_run

__all__ = ["build_app", "launch", "canvas_scale", "example_label_maps", "label_from_canvas",
           "newest_run"]
