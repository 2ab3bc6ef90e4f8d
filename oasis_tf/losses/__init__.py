"""The losses of OASIS.

``adversarial``: the class-balanced (N+1)-class cross-entropy of the discriminator and
the generator, and LabelMix (``labelmix_mask``, ``labelmix_images``, ``labelmix_loss``).
``vgg``: the official optional VGG19 perceptual loss of the generator (``VGGLoss``).

    loss_d_real = oasis_tf.losses.d_real_loss(logits, label, class_weights)
    vgg = oasis_tf.losses.VGGLoss(weights="vgg19-dcbb9e9d.pth")
"""

from oasis_tf.losses.adversarial import (LOSS_NAMES, class_balance_weights, class_counts,
                                         d_fake_loss, d_real_loss, g_adversarial_loss,
                                         labelmix_images, labelmix_loss, labelmix_mask)
from oasis_tf.losses.vgg import (KERAS_IMAGENET, OFFICIAL_WEIGHTS_FILE, OFFICIAL_WEIGHTS_URL,
                                 VGG_LAYER_WEIGHTS, VGGLoss, vgg19_missing_weights_message,
                                 vgg_loss_from_config)

__all__ = ["LOSS_NAMES", "class_counts", "class_balance_weights", "d_real_loss", "g_adversarial_loss",
           "d_fake_loss", "labelmix_mask", "labelmix_images", "labelmix_loss", "VGGLoss",
           "vgg_loss_from_config", "vgg19_missing_weights_message", "KERAS_IMAGENET",
           "OFFICIAL_WEIGHTS_FILE", "OFFICIAL_WEIGHTS_URL", "VGG_LAYER_WEIGHTS"]
