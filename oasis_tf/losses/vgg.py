"""The official OASIS VGG perceptual loss (``--add_vgg_loss``).

The official ``VGGLoss`` runs torchvision's ImageNet VGG19 ``features`` on the
fake and the real image, takes relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1
(``features[0:2]``, ``[2:7]``, ``[7:12]``, ``[12:21]``, ``[21:30]``) and returns

    sum_i w_i * mean|phi_i(fake) - phi_i(real)|,  w = 1/32, 1/16, 1/8, 1/4, 1

with the real image's features held constant. The [-1, 1] images go in as they
are (no ImageNet normalisation). ``VGGLoss`` reproduces exactly that from the
same weights: torchvision's state dict ``vgg19-dcbb9e9d.pth`` (read without
torch when torch is absent) or an ``.npz`` of the same keys.

Keras' ``keras.applications.VGG19`` ImageNet weights are another network
(Caffe weights converted, BGR input with the ImageNet mean subtracted, 0..255);
``VGGLoss(weights="keras_imagenet")`` uses them with that preprocessing, as an
explicit choice that is not the official loss.

The VGG runs in float32 whatever the Keras dtype policy (its activations reach
~1e3 with the ImageNet weights, and the loss is a small difference of them).
"""

import collections.abc
import os

import numpy as np
import tensorflow as tf

# Keras' own VGG19 ImageNet weights (a different network: explicit opt-in).
KERAS_IMAGENET = "keras_imagenet"
# torchvision's VGG19 ImageNet state dict, what the official code loads.
OFFICIAL_WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"
OFFICIAL_WEIGHTS_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

# torchvision's vgg19().features up to relu5_1 (index 29), split as the official
# slices: an int is the index of a 3x3 conv (always followed by a ReLU), "pool"
# a 2x2 max pool with stride 2.
VGG19_SLICES = (
    (0,),                               # features[0:2]:   conv1_1, relu1_1
    (2, "pool", 5),                     # features[2:7]:   ... relu2_1
    (7, "pool", 10),                    # features[7:12]:  ... relu3_1
    (12, 14, 16, "pool", 19),           # features[12:21]: ... relu4_1
    (21, 23, 25, "pool", 28),           # features[21:30]: ... relu5_1
)
# Input and output channels of every conv the slices use.
_CONV_CHANNELS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256),
                  12: (256, 256), 14: (256, 256), 16: (256, 256), 19: (256, 512),
                  21: (512, 512), 23: (512, 512), 25: (512, 512), 28: (512, 512)}
# keras.applications.VGG19 layer -> torchvision features index.
_KERAS_LAYERS = {"block1_conv1": 0, "block1_conv2": 2, "block2_conv1": 5, "block2_conv2": 7,
                 "block3_conv1": 10, "block3_conv2": 12, "block3_conv3": 14,
                 "block3_conv4": 16, "block4_conv1": 19, "block4_conv2": 21,
                 "block4_conv3": 23, "block4_conv4": 25, "block5_conv1": 28}
# keras.applications.vgg19.preprocess_input ("caffe" mode): BGR means.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def vgg19_missing_weights_message(what="the VGG loss"):
    """The message for a VGG loss asked for without a weights file."""
    return (f"{what} needs torchvision's ImageNet VGG19 state dict {OFFICIAL_WEIGHTS_FILE} "
            f"(the official code gets it through torchvision.models.vgg19(pretrained=True), "
            f"which downloads it from torchvision's model zoo: {OFFICIAL_WEIGHTS_URL}), or an "
            f".npz of the same keys (features.0.weight, features.0.bias, ...). Set "
            f"train.vgg_weights to its path. train.vgg_weights={KERAS_IMAGENET!r} uses Keras' "
            f"VGG19 ImageNet weights instead: a different network, not the official loss.")


def _torch_state_to_kernels(state_dict, source):
    """{features index: (HWIO kernel, bias)} from a torchvision VGG19 state dict."""
    problems = []
    kernels = {}
    for index, (cin, cout) in _CONV_CHANNELS.items():
        expected = {f"features.{index}.weight": (cout, cin, 3, 3),
                    f"features.{index}.bias": (cout,)}
        arrays = []
        for key, shape in expected.items():
            if key not in state_dict:
                problems.append(f"missing key {key} (expected shape {list(shape)})")
                continue
            value = np.asarray(state_dict[key])
            if tuple(value.shape) != shape:
                problems.append(f"key {key} has shape {list(value.shape)}, expected "
                                f"{list(shape)}")
                continue
            arrays.append(value.astype(np.float32))
        if len(arrays) == 2:
            kernels[index] = (np.transpose(arrays[0], (2, 3, 1, 0)), arrays[1])
    if problems:
        raise ValueError(f"{source} is not a torchvision VGG19 state dict (keys "
                         f"features.N.weight/bias in torchvision's layout): "
                         + "; ".join(problems))
    return kernels


def _keras_imagenet_kernels(weights="imagenet"):
    """{features index: (HWIO kernel, bias)} from ``keras.applications.VGG19``."""
    import keras

    model = keras.applications.VGG19(include_top=False, weights=weights)
    kernels = {}
    for name, index in _KERAS_LAYERS.items():
        kernel, bias = model.get_layer(name).get_weights()
        kernels[index] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
    return kernels


class VGGLoss:
    """The official OASIS VGG19 perceptual loss.

    ``loss = vgg(fake, real)`` with float images [B, H, W, 3] in [-1, 1] (H and W
    at least 16: four 2x2 max pools) returns the float32 scalar
    ``sum_i w_i * mean|phi_i(fake) - phi_i(real)|`` over relu1_1 .. relu5_1; no
    gradient flows into ``real``.

    A plain object, not a Keras layer: its weights are constants of the loss
    (non-trainable ``tf.Variable``s, mirrored when created inside a
    ``strategy.scope()``), not state of the model, so they are neither trained
    nor written into checkpoints; a run loads them from ``weights`` at start.

    Args:
        weights: path to torchvision's ``vgg19-dcbb9e9d.pth`` or an ``.npz`` of the
            same keys, or that state dict as a mapping (keys outside ``features``
            and unused ``features`` convs are ignored; a missing or mis-shaped key
            is named); or ``"keras_imagenet"`` for Keras' VGG19 ImageNet weights
            (a different network, fed the BGR, mean-subtracted 0..255 input it
            expects; not the official loss).
        layer_weights: the five slice weights (official 1/32, 1/16, 1/8, 1/4, 1).

    Example:

        vgg = VGGLoss(weights="vgg19-dcbb9e9d.pth")
        loss = vgg(fake, real)

    Reference: Sushko et al., "You Only Need Adversarial Supervision for Semantic
    Image Synthesis", ICLR 2021 (official code, ``models/losses.py``).
    """

    def __init__(self, weights, layer_weights=VGG_LAYER_WEIGHTS):
        if weights is None:
            raise ValueError(vgg19_missing_weights_message("VGGLoss") + " Received: weights=None")
        layer_weights = tuple(float(w) for w in layer_weights)
        if len(layer_weights) != len(VGG19_SLICES):
            raise ValueError(f"`layer_weights` must have {len(VGG19_SLICES)} values (relu1_1 "
                             f".. relu5_1). Received: layer_weights={list(layer_weights)}")
        self.layer_weights = layer_weights
        self.keras_imagenet = isinstance(weights, str) and weights == KERAS_IMAGENET
        if self.keras_imagenet:
            self.source = KERAS_IMAGENET
            kernels = _keras_imagenet_kernels()
        elif isinstance(weights, collections.abc.Mapping):
            self.source = None
            kernels = _torch_state_to_kernels(weights, "the VGG19 state dict")
        elif isinstance(weights, (str, os.PathLike)):
            from oasis_tf.convert.state_dict_io import read_state_dict

            path = os.fspath(weights)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"VGG19 weights file not found: {path}. "
                                        + vgg19_missing_weights_message())
            self.source = path
            kernels = _torch_state_to_kernels(read_state_dict(path), path)
        else:
            raise ValueError(f"`weights` must be a path, a state dict or "
                             f"{KERAS_IMAGENET!r}. Received: weights={weights!r}")
        self._set_kernels(kernels)

    def _set_kernels(self, kernels):
        self.kernels = {}
        for index, (kernel, bias) in sorted(kernels.items()):
            self.kernels[index] = (
                tf.Variable(kernel, trainable=False, name=f"vgg19_features_{index}_kernel"),
                tf.Variable(bias, trainable=False, name=f"vgg19_features_{index}_bias"))

    def get_config(self):
        """``{"weights": path or "keras_imagenet", "layer_weights": [...]}``
        (weights None when built from an in-memory state dict)."""
        return {"weights": self.source, "layer_weights": list(self.layer_weights)}

    def _prepare(self, images):
        x = tf.cast(images, tf.float32)
        if self.keras_imagenet:  # Keras' VGG19 expects Caffe's BGR, mean-subtracted input
            x = (x + 1.0) * 127.5
            x = x[..., ::-1] - tf.constant(_CAFFE_BGR_MEAN, tf.float32)
        return x

    def features(self, images):
        """relu1_1 .. relu5_1 of float images [B, H, W, 3] in [-1, 1] (float32)."""
        x = self._prepare(images)
        out = []
        for ops_of_slice in VGG19_SLICES:
            for op in ops_of_slice:
                if op == "pool":
                    x = tf.nn.max_pool2d(x, 2, 2, "VALID")
                else:
                    kernel, bias = self.kernels[op]
                    x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
            out.append(x)
        return out

    def __call__(self, fake, real, batch_size=None):
        """The loss of ``fake`` against ``real`` (no gradient into ``real``).

        Args:
            fake: float tensor [B, H, W, 3] in [-1, 1], e.g. G's output.
            real: float tensor [B, H, W, 3] in [-1, 1].
            batch_size: optional number of images each mean is over; defaults to
                B. Under ``tf.distribute`` pass the global batch size: each
                replica's value is then its share of the global loss.

        Returns:
            float32 scalar.
        """
        fake = tf.convert_to_tensor(fake)
        if fake.shape.rank != 4 or fake.shape[-1] != 3:
            raise ValueError(f"VGGLoss takes images [B, H, W, 3]. Received: fake with shape "
                             f"{fake.shape}")
        both = self.features(tf.concat([tf.cast(fake, tf.float32),
                                        tf.cast(real, tf.float32)], axis=0))
        n = tf.shape(fake)[0]
        total = tf.zeros([], tf.float32)
        for weight, feature in zip(self.layer_weights, both):
            diff = tf.abs(feature[:n] - tf.stop_gradient(feature[n:]))
            shape = tf.shape(feature)
            per_image = tf.cast(shape[1] * shape[2] * shape[3], tf.float32)
            images = tf.cast(n if batch_size is None else batch_size, tf.float32)
            total += weight * tf.reduce_sum(diff) / (images * per_image)
        return total


def vgg_loss_from_config(train_config):
    """The ``VGGLoss`` a ``TrainConfig`` asks for (``train.vgg_loss``), or None.

    Args:
        train_config: the ``train`` section of an ``OASISConfig``.

    Raises:
        ValueError: ``train.vgg_loss`` is on but ``train.vgg_weights`` is not set
            (the message names the file needed and where to get it).
    """
    if not train_config.vgg_loss:
        return None
    if not train_config.vgg_weights:
        raise ValueError(vgg19_missing_weights_message("train.vgg_loss"))
    return VGGLoss(weights=train_config.vgg_weights)
