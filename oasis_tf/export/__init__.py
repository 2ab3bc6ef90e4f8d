"""Deployment: SavedModel export for TF Serving (and, where available, TFLite)."""

from oasis_tf.export.saved_model import (
    METADATA_FILE, SIGNATURES, default_palette, export_saved_model, read_export_metadata)

__all__ = ["METADATA_FILE", "SIGNATURES", "default_palette", "export_saved_model",
           "read_export_metadata"]
