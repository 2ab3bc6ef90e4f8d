"""OASIS Studio: a Gradio page to paint label maps and generate images.

``StudioModel`` (``oasis_tf.studio.model``) holds the generator, its class names and
palette; ``build_app`` / ``launch`` (``oasis_tf.studio.app``) make and serve the page
(Gradio is the optional extra ``studio``: ``pip install -e ".[studio]"``).
"""

from oasis_tf.studio.app import build_app, launch
from oasis_tf.studio.model import StudioModel, canvas_scale, newest_run

__all__ = ["StudioModel", "build_app", "launch", "canvas_scale", "newest_run"]
