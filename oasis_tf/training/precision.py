"""Mixed precision for OASIS: the Keras dtype policy and float16 loss scaling.

``train.mixed_precision`` is one of

* ``"float32"``: everything float32 (the parity reference);
* ``"mixed_bfloat16"``: convolutions, activations, SPADE's gamma/beta in bfloat16;
  variables float32 (same range as float32: no loss scaling);
* ``"mixed_float16"``: the same in float16, with dynamic loss scaling for both
  optimizers (``keras.optimizers.LossScaleOptimizer``: the loss is multiplied by
  the scale, gradients are divided by it before Adam, a step whose gradients are
  not finite on any replica is skipped and halves the scale; 2000 finite steps
  double it). ``OASIS.compile`` wraps both optimizers when a network computes in
  float16.

What stays float32 under every policy (by construction of the layers, not by
this module): every variable (kernels are created with ``autocast=False`` and
cast to the compute dtype inside the conv), the spectral norm's power iteration
and sigma, the SPADE batch statistics and running averages, the softmax /
cross-entropy and LabelMix losses (``oasis_tf.losses`` casts to float32), the
EMA update (float32 variables), the generator's output image and the
discriminator's logits (cast to float32 at the end of each network).

A Keras layer takes its dtype policy when it is constructed, so the policy only
has to be global while the networks are built: ``policy_scope`` sets it and
restores the previous one afterwards, so building a mixed model does not leak
the policy into other models of the same process.
"""

import contextlib

import keras

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def check_policy(name):
    """Returns ``name`` if it is a supported policy, else raises ValueError."""
    if name not in POLICIES:
        raise ValueError(f"`train.mixed_precision` must be one of {POLICIES}. "
                         f"Received: {name!r}")
    return name


@contextlib.contextmanager
def policy_scope(name):
    """Sets the global Keras dtype policy to ``name`` inside the block (build the
    networks there) and restores the previous policy on exit."""
    check_policy(name)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(name)
    try:
        yield keras.mixed_precision.global_policy()
    finally:
        keras.mixed_precision.set_dtype_policy(previous)
