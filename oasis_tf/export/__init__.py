"""Deployment: SavedModel export for TF Serving, and TFLite / LiteRT conversion."""

from oasis_tf.export.saved_model import (
    GENERATOR_VARIABLES, METADATA_FILE, SIGNATURES, default_palette, export_metadata,
    export_saved_model, read_export_metadata)
from oasis_tf.export.tflite import (
    QUANTIZATIONS, TFLITE_SIGNATURE, check_tflite_inputs, convert_tflite, convert_tflite_variants,
    interpreter_backend, load_generator_from_export, make_interpreter, run_tflite,
    tflite_report)

__all__ = ["GENERATOR_VARIABLES", "METADATA_FILE", "SIGNATURES", "default_palette",
           "export_metadata", "export_saved_model", "read_export_metadata", "QUANTIZATIONS", "TFLITE_SIGNATURE",
           "check_tflite_inputs", "convert_tflite", "convert_tflite_variants",
           "interpreter_backend", "load_generator_from_export", "make_interpreter", "run_tflite",
           "tflite_report"]
