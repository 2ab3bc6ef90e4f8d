"""An independent PyTorch training iteration of the official OASIS model,
written from the specification in shared/reference/oasis_torch/README.md
(sections 2, 4.2-4.4, 4.6) and shared/DESIGN.md.

It works on official-format state dicts (NCHW, official key names), turned into
torch tensors: parameters (``weight_orig``, ``weight``, ``bias``) are leaf
tensors with ``requires_grad``; buffers (``weight_u``, ``weight_v``,
``running_mean``, ``running_var``, ``num_batches_tracked``) are plain tensors
that the train-mode forwards replace as they go. So it checks ``OASIS.train_step``
for configurations without a stored fixture (class count, aspect ratio, learning
rates, EMA decay, LabelMix weight, don't-care handling, class balancing).

The network structure is the one of ``torch_reference.py`` (eval-mode forward);
here every forward is in train mode:

* spectral norm: one power iteration under no_grad (``v = normalize(W^T u)``,
  ``u = normalize(W v)``, eps 1e-12) stored in the buffers, then
  ``W / sigma`` with ``sigma = dot(u, W v)``, u and v constants for autograd;
* SyncBN on one device: batch mean and biased variance over (N, H, W) for the
  normalisation (eps 1e-5), ``running_mean = 0.9 rm + 0.1 mean``,
  ``running_var = 0.9 rv + 0.1 unbiased_var``; ``num_batches_tracked`` unchanged.
"""

import numpy as np
import torch
import torch.nn.functional as F

BUFFER_SUFFIXES = ("weight_u", "weight_v", "running_mean", "running_var",
                   "num_batches_tracked")


def is_parameter(key):
    return not key.endswith(BUFFER_SUFFIXES)


class TorchState:
    """An official state dict as torch tensors (parameters require grad)."""

    def __init__(self, state_dict, dtype=torch.float32):
        self.state = {}
        for key, value in state_dict.items():
            t = torch.tensor(np.array(value))
            if t.is_floating_point():
                t = t.to(dtype)
            if is_parameter(key):
                t.requires_grad_(True)
            self.state[key] = t

    def parameters(self):
        return [v for k, v in self.state.items() if is_parameter(k)]

    def numpy(self):
        return {k: v.detach().numpy().copy() for k, v in self.state.items()}

    def __contains__(self, key):
        return key in self.state

    def __getitem__(self, key):
        return self.state[key]

    def __setitem__(self, key, value):
        self.state[key] = value


# ------------------------------------------------------------ train-mode layers
def conv(st, prefix, x):
    if prefix + ".weight_orig" in st:
        w = st[prefix + ".weight_orig"]
        w_mat = w.reshape(w.shape[0], -1)
        with torch.no_grad():
            u = st[prefix + ".weight_u"]
            v = F.normalize(torch.mv(w_mat.t(), u), dim=0, eps=1e-12)
            u = F.normalize(torch.mv(w_mat, v), dim=0, eps=1e-12)
        st[prefix + ".weight_u"], st[prefix + ".weight_v"] = u, v
        w = w / torch.dot(u, torch.mv(w_mat, v))
    else:
        w = st[prefix + ".weight"]
    b = st[prefix + ".bias"] if prefix + ".bias" in st else None
    return F.conv2d(x, w, b, padding=w.shape[-1] // 2)


def batch_norm(st, prefix, x):
    mean = x.mean(dim=(0, 2, 3))
    var = ((x - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
    n = x.numel() // x.shape[1]
    with torch.no_grad():
        rm, rv = prefix + ".running_mean", prefix + ".running_var"
        st[rm] = 0.9 * st[rm] + 0.1 * mean
        st[rv] = 0.9 * st[rv] + 0.1 * var * (n / (n - 1))
    return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)


def spade(st, p, x, seg):
    n = batch_norm(st, p + ".first_norm", x)
    s = F.interpolate(seg, size=x.shape[2:])
    a = F.relu(conv(st, p + ".mlp_shared.0", s))
    return n * (1 + conv(st, p + ".mlp_gamma", a)) + conv(st, p + ".mlp_beta", a)


def generator(st, onehot, z, latent_hw):
    """Train-mode generator: onehot [B,C,H,W], z [B,Z] -> image [B,3,H,W]."""
    zmap = z[:, :, None, None].expand(-1, -1, *onehot.shape[2:])
    seg = torch.cat([zmap, onehot], 1)
    x = conv(st, "fc", F.interpolate(seg, size=latent_hw))
    n = len({k.split(".")[1] for k in st.state if k.startswith("body.")})
    for i in range(n):
        p = f"body.{i}"
        if p + ".conv_s.weight_orig" in st:
            xs = conv(st, p + ".conv_s", spade(st, p + ".norm_s", x, seg))
        else:
            xs = x
        dx = conv(st, p + ".conv_0", F.leaky_relu(spade(st, p + ".norm_0", x, seg), 0.2))
        dx = conv(st, p + ".conv_1", F.leaky_relu(spade(st, p + ".norm_1", dx, seg), 0.2))
        x = xs + dx
        if i < n - 1:
            x = F.interpolate(x, scale_factor=2)
    return torch.tanh(conv(st, "conv_img", F.leaky_relu(x, 0.2)))


def _d_block(st, p, x, up, first):
    learned = p + ".conv_s.weight_orig" in st
    if up:
        xs = F.interpolate(x, scale_factor=2)
        xs = conv(st, p + ".conv_s", xs) if learned else xs
        dx = conv(st, p + ".conv1.2", F.interpolate(F.leaky_relu(x, 0.2), scale_factor=2))
        return xs + conv(st, p + ".conv2.1", F.leaky_relu(dx, 0.2))
    if first:
        xs = F.avg_pool2d(x, 2)
        xs = conv(st, p + ".conv_s", xs) if learned else xs
        dx = conv(st, p + ".conv1.0", x)
    else:
        xs = F.avg_pool2d(conv(st, p + ".conv_s", x) if learned else x, 2)
        dx = conv(st, p + ".conv1.1", F.leaky_relu(x, 0.2))
    dx = conv(st, p + ".conv2.1", F.leaky_relu(dx, 0.2))
    return xs + F.avg_pool2d(dx, 2)


def discriminator(st, image):
    """Train-mode discriminator: image [B,3,H,W] -> logits [B,C+1,H,W]."""
    x, skips = image, []
    for i in range(6):
        x = _d_block(st, f"body_down.{i}", x, up=False, first=i == 0)
        skips.append(x)
    x = _d_block(st, "body_up.0", x, up=True, first=False)
    for i in range(1, 6):
        x = _d_block(st, f"body_up.{i}", torch.cat([skips[-i - 1], x], 1), up=True,
                     first=False)
    return conv(st, "layer_up_last", x)


# ------------------------------------------------------------ losses (README 2.6)
def class_weight_map(onehot, dontcare_label, class_balancing):
    """coef[y] per pixel [B,H,W] (ones without class balancing)."""
    y = onehot.argmax(1)
    if not class_balancing:
        return torch.ones(y.shape)
    count = onehot.sum(dim=(0, 2, 3))
    if dontcare_label:
        count[0] = 0
    n = (count > 0).sum()
    coef = torch.reciprocal(count) * (y.numel() / n)      # absent classes: inf, never indexed
    if dontcare_label:
        coef[0] = 0
    return coef[y]


def adversarial_loss(logits, onehot, for_real, dontcare_label=True, class_balancing=True):
    y = onehot.argmax(1)
    if not for_real:
        return F.cross_entropy(logits, torch.zeros_like(y), reduction="none").mean()
    ce = F.cross_entropy(logits, y + 1, reduction="none")
    return (ce * class_weight_map(onehot, dontcare_label, class_balancing)).mean()


# ------------------------------------------------------------ VGG loss
# torchvision's cfg "E" (VGG19): 3x3 convs (each followed by ReLU) and "M" max pools.
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
             512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def vgg19_features(seed=0):
    """An ``nn.Sequential`` in the layout of ``torchvision.models.vgg19().features``
    (same indices, so the same state-dict keys), torchvision's init (kaiming
    normal, fan_out) and random nonzero biases; no gradients into it."""
    torch.manual_seed(seed)
    layers, cin = [], 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv = torch.nn.Conv2d(cin, v, kernel_size=3, padding=1)
            torch.nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.uniform_(conv.bias, -0.1, 0.1)
            layers += [conv, torch.nn.ReLU(inplace=True)]
            cin = v
    features = torch.nn.Sequential(*layers)
    for p in features.parameters():
        p.requires_grad_(False)
    return features


def vgg19_state_dict(features):
    """The torchvision-style keys ``features.N.weight`` / ``.bias`` as numpy."""
    return {f"features.{k}": v.detach().numpy().copy() for k, v in features.state_dict().items()}


def official_vgg_loss(features, x, y):
    """The official models/losses.py VGGLoss.forward with models/vggloss.py's slices
    (relu1_1 .. relu5_1), weights 1/32 .. 1, L1 means, real features detached."""
    bounds = [(0, 2), (2, 7), (7, 12), (12, 21), (21, 30)]
    weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]

    def run(h):
        out = []
        for a, b in bounds:
            for i in range(a, b):
                h = features[i](h)
            out.append(h)
        return out

    x_vgg, y_vgg = run(x), run(y)
    loss = 0
    for i in range(len(x_vgg)):
        loss += weights[i] * F.l1_loss(x_vgg[i], y_vgg[i].detach())
    return loss


# ------------------------------------------------------------ the iteration
class TorchOASISTrainer:
    """The official training loop body (README 4.2) on official state dicts.

    Args:
        g_state, d_state: official generator / discriminator state dicts (numpy).
        lr_g, lr_d: Adam learning rates (betas (0, 0.999), eps 1e-8).
        lambda_labelmix: LabelMix weight.
        ema_decay: EMA decay; the EMA starts as a copy of ``g_state``.
        dontcare_label: class 0 is the don't-care class.
        class_balancing: class-balanced real losses.
        dtype: float dtype of the computation (float64 for diagnostics).
        vgg_features: optional ``vgg19_features()`` module: the official
            ``--add_vgg_loss`` (``lambda_vgg * VGGLoss(fake, image)`` added to
            the generator loss).
        lambda_vgg: weight of the VGG loss.
    """

    def __init__(self, g_state, d_state, lr_g, lr_d, lambda_labelmix, ema_decay,
                 dontcare_label=True, class_balancing=True, dtype=torch.float32,
                 vgg_features=None, lambda_vgg=10.0):
        self.dtype = dtype
        self.vgg_features = vgg_features
        self.lambda_vgg = lambda_vgg
        self.g = TorchState(g_state, dtype)
        self.d = TorchState(d_state, dtype)
        self.ema = {k: v.detach().clone() for k, v in self.g.state.items()}
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=lr_g, betas=(0.0, 0.999),
                                      eps=1e-8)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr_d, betas=(0.0, 0.999),
                                      eps=1e-8)
        self.lambda_labelmix = lambda_labelmix
        self.ema_decay = ema_decay
        self.dontcare_label = dontcare_label
        self.class_balancing = class_balancing

    def load(self, g_state, d_state, ema_state, adam_g=None, adam_d=None):
        """Restart from given states (e.g. another implementation's, so that
        each iteration is compared from identical states).

        ``adam_g`` / ``adam_d``: parameter key -> (exp_avg, exp_avg_sq, step) of
        torch's Adam; None for fresh optimizers.
        """
        self.g = TorchState(g_state, self.dtype)
        self.d = TorchState(d_state, self.dtype)
        self.ema = {k: v.detach().clone() for k, v in TorchState(ema_state, self.dtype).state.items()}
        lr_g, lr_d = self.opt_g.defaults["lr"], self.opt_d.defaults["lr"]
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=lr_g, betas=(0.0, 0.999), eps=1e-8)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr_d, betas=(0.0, 0.999), eps=1e-8)
        for net, opt, adam in ((self.g, self.opt_g, adam_g), (self.d, self.opt_d, adam_d)):
            for key, (m, v, step) in (adam or {}).items():
                opt.state[net[key]] = {
                    "step": torch.tensor(float(step)),
                    "exp_avg": torch.tensor(np.array(m)).to(self.dtype),
                    "exp_avg_sq": torch.tensor(np.array(v)).to(self.dtype)}

    def _loss(self, logits, onehot, for_real):
        return adversarial_loss(logits, onehot, for_real, self.dontcare_label,
                                self.class_balancing)

    def step(self, label, image, z_g, z_d, mask):
        """One iteration.

        Args:
            label: int class ids [B,H,W].
            image: real images [B,3,H,W] (NCHW).
            z_g, z_d: noise [B,Z] of the G-update and D-update generator forwards.
            mask: LabelMix mask [B,1,H,W] of 0/1.

        Returns:
            dict of python floats: loss_g, loss_d_fake, loss_d_real,
            loss_d_labelmix (times lambda), loss_d.
        """
        num_classes = self.d["layer_up_last.weight"].shape[0] - 1
        label = torch.as_tensor(np.asarray(label), dtype=torch.int64)
        onehot = F.one_hot(label, num_classes).permute(0, 3, 1, 2).to(self.dtype)
        image, z_g, z_d, mask = (torch.as_tensor(np.asarray(a, np.float32)).to(self.dtype)
                                 for a in (image, z_g, z_d, mask))
        latent_hw = (label.shape[1] // 32, label.shape[2] // 32)   # 6 res blocks

        # --- G update
        self.opt_g.zero_grad()
        fake = generator(self.g, onehot, z_g, latent_hw)
        loss_g = self._loss(discriminator(self.d, fake), onehot, for_real=True)
        total_g = loss_g
        if self.vgg_features is not None:
            loss_g_vgg = self.lambda_vgg * official_vgg_loss(self.vgg_features, fake, image)
            total_g = loss_g + loss_g_vgg
        total_g.backward()
        self.opt_g.step()

        # --- D update
        self.opt_d.zero_grad()
        with torch.no_grad():
            fake = generator(self.g, onehot, z_d, latent_hw)
        d_fake = discriminator(self.d, fake)
        d_real = discriminator(self.d, image)
        mixed = mask * image + (1 - mask) * fake
        d_mixed = discriminator(self.d, mixed)
        loss_fake = self._loss(d_fake, onehot, for_real=False)
        loss_real = self._loss(d_real, onehot, for_real=True)
        loss_lm = self.lambda_labelmix * F.mse_loss(mask * d_real + (1 - mask) * d_fake,
                                                    d_mixed)
        loss_d = loss_fake + loss_real + loss_lm
        loss_d.backward()
        self.opt_d.step()

        # --- EMA of every state entry
        decay = self.ema_decay
        with torch.no_grad():
            for key, value in self.g.state.items():
                ema = self.ema[key]
                new = ema * decay + value.detach() * (1 - decay)
                self.ema[key] = new.to(ema.dtype)
        values = dict(loss_g=loss_g, loss_d_fake=loss_fake, loss_d_real=loss_real,
                      loss_d_labelmix=loss_lm, loss_d=loss_d)
        if self.vgg_features is not None:
            values["loss_g_vgg"] = loss_g_vgg
        return {name: float(value.detach()) for name, value in values.items()}

    def states(self):
        """(G, D, EMA) state dicts as numpy arrays."""
        return self.g.numpy(), self.d.numpy(), {k: v.numpy().copy() for k, v in self.ema.items()}
