"""An independent PyTorch forward of the official networks, written from the
specification in shared/reference/oasis_torch/README.md (sections 2.1-2.5).

It runs on an official-format state dict (NCHW), so comparing it with the
converted Keras networks checks the conversion for configurations that have no
stored fixture (other class counts, non-square images, the full-width
discriminator). Also makes random state dicts with the official key names.
"""

import numpy as np
import torch
import torch.nn.functional as F


def _t(sd, key):
    return torch.as_tensor(np.asarray(sd[key]))


def conv(sd, prefix, x):
    if prefix + ".weight_orig" in sd:
        w = _t(sd, prefix + ".weight_orig")
        u, v = _t(sd, prefix + ".weight_u"), _t(sd, prefix + ".weight_v")
        w = w / torch.dot(u, w.reshape(w.shape[0], -1) @ v)
    else:
        w = _t(sd, prefix + ".weight")
    b = _t(sd, prefix + ".bias") if prefix + ".bias" in sd else None
    return F.conv2d(x, w, b, padding=w.shape[-1] // 2)


def spade(sd, p, x, seg):
    if p + ".first_norm.running_mean" in sd:
        mean = _t(sd, p + ".first_norm.running_mean")[None, :, None, None]
        var = _t(sd, p + ".first_norm.running_var")[None, :, None, None]
        n = (x - mean) / torch.sqrt(var + 1e-5)
    else:
        n = F.instance_norm(x, eps=1e-5)
    s = F.interpolate(seg, size=x.shape[2:])
    a = F.relu(conv(sd, p + ".mlp_shared.0", s))
    return n * (1 + conv(sd, p + ".mlp_gamma", a)) + conv(sd, p + ".mlp_beta", a)


def generator(sd, onehot, z, latent_hw):
    """onehot [B,C,H,W], z [B,Z] or None (no 3D noise) -> image [B,3,H,W]."""
    seg = onehot
    if z is not None:
        zmap = z[:, :, None, None].expand(-1, -1, *onehot.shape[2:])
        seg = torch.cat([zmap, onehot], 1)
    x = conv(sd, "fc", F.interpolate(seg, size=latent_hw))
    n = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    for i in range(n):
        p = f"body.{i}"
        if p + ".conv_s.weight_orig" in sd or p + ".conv_s.weight" in sd:
            xs = conv(sd, p + ".conv_s", spade(sd, p + ".norm_s", x, seg))
        else:
            xs = x
        dx = conv(sd, p + ".conv_0", F.leaky_relu(spade(sd, p + ".norm_0", x, seg), 0.2))
        dx = conv(sd, p + ".conv_1", F.leaky_relu(spade(sd, p + ".norm_1", dx, seg), 0.2))
        x = xs + dx
        if i < n - 1:
            x = F.interpolate(x, scale_factor=2)
    return torch.tanh(conv(sd, "conv_img", F.leaky_relu(x, 0.2)))


def _d_block(sd, p, x, up, first):
    learned = p + ".conv_s.weight_orig" in sd or p + ".conv_s.weight" in sd
    if up:
        xs = F.interpolate(x, scale_factor=2)
        xs = conv(sd, p + ".conv_s", xs) if learned else xs
        dx = conv(sd, p + ".conv1.2", F.interpolate(F.leaky_relu(x, 0.2), scale_factor=2))
        return xs + conv(sd, p + ".conv2.1", F.leaky_relu(dx, 0.2))
    if first:
        xs = F.avg_pool2d(x, 2)
        xs = conv(sd, p + ".conv_s", xs) if learned else xs
        dx = conv(sd, p + ".conv1.0", x)
    else:
        xs = F.avg_pool2d(conv(sd, p + ".conv_s", x) if learned else x, 2)
        dx = conv(sd, p + ".conv1.1", F.leaky_relu(x, 0.2))
    dx = conv(sd, p + ".conv2.1", F.leaky_relu(dx, 0.2))
    return xs + F.avg_pool2d(dx, 2)


def discriminator(sd, image):
    """image [B,3,H,W] -> logits [B,C+1,H,W]."""
    x, skips = image, []
    for i in range(6):
        x = _d_block(sd, f"body_down.{i}", x, up=False, first=i == 0)
        skips.append(x)
    x = _d_block(sd, "body_up.0", x, up=True, first=False)
    for i in range(1, 6):
        x = _d_block(sd, f"body_up.{i}", torch.cat([skips[-i - 1], x], 1), up=True, first=False)
    return conv(sd, "layer_up_last", x)


# ------------------------------------------------------------ random weights
def _conv_keys(shapes, prefix, cout, cin, k, bias=True, sn=True):
    if bias:
        shapes[prefix + ".bias"] = (cout,)
    if sn:
        shapes[prefix + ".weight_orig"] = (cout, cin, k, k)
        shapes[prefix + ".weight_u"] = (cout,)
        shapes[prefix + ".weight_v"] = (cin * k * k,)
    else:
        shapes[prefix + ".weight"] = (cout, cin, k, k)


def generator_shapes(num_classes, ch, z_dim, use_3d_noise=True, sn=True, batch_norm=True,
                     spade_ks=3):
    """Official generator key -> shape (README section 1.1); ``spade_ks`` is the
    official option of that name (kernel size of the SPADE convs)."""
    widths = [16 * ch, 16 * ch, 16 * ch, 8 * ch, 4 * ch, 2 * ch, ch]
    cond = num_classes + (z_dim if use_3d_noise else 0)
    shapes = {}
    _conv_keys(shapes, "conv_img", 3, ch, 3, sn=False)
    for i in range(6):
        fin, fout = widths[i], widths[i + 1]
        fmid = min(fin, fout)
        _conv_keys(shapes, f"body.{i}.conv_0", fmid, fin, 3, sn=sn)
        _conv_keys(shapes, f"body.{i}.conv_1", fout, fmid, 3, sn=sn)
        norms = [("norm_0", fin), ("norm_1", fmid)]
        if fin != fout:
            _conv_keys(shapes, f"body.{i}.conv_s", fout, fin, 1, bias=False, sn=sn)
            norms.append(("norm_s", fin))
        for name, c in norms:
            p = f"body.{i}.{name}"
            if batch_norm:
                shapes[p + ".first_norm.running_mean"] = (c,)
                shapes[p + ".first_norm.running_var"] = (c,)
                shapes[p + ".first_norm.num_batches_tracked"] = ()
            _conv_keys(shapes, p + ".mlp_shared.0", 128, cond, spade_ks, sn=False)
            _conv_keys(shapes, p + ".mlp_gamma", c, 128, spade_ks, sn=False)
            _conv_keys(shapes, p + ".mlp_beta", c, 128, spade_ks, sn=False)
    _conv_keys(shapes, "fc", 16 * ch, cond, 3, sn=False)
    return shapes


def discriminator_shapes(num_classes, base=128, sn=True):
    """Official discriminator key -> shape (README section 1.2)."""
    ch = [3, base, base, 2 * base, 2 * base, 4 * base, 4 * base]
    shapes = {}
    ups = [(ch[6], ch[5])] + [(2 * ch[6 - i], ch[5 - i]) for i in range(1, 5)]
    ups.append((2 * ch[1], base // 2))
    for i, (fin, fout) in enumerate(ups):
        _conv_keys(shapes, f"body_up.{i}.conv1.2", fout, fin, 3, sn=sn)
        _conv_keys(shapes, f"body_up.{i}.conv2.1", fout, fout, 3, sn=sn)
        if fin != fout:
            _conv_keys(shapes, f"body_up.{i}.conv_s", fout, fin, 1, sn=sn)
    for i in range(6):
        fin, fout = ch[i], ch[i + 1]
        _conv_keys(shapes, f"body_down.{i}.conv1.{0 if i == 0 else 1}", fout, fin, 3, sn=sn)
        _conv_keys(shapes, f"body_down.{i}.conv2.1", fout, fout, 3, sn=sn)
        if fin != fout:
            _conv_keys(shapes, f"body_down.{i}.conv_s", fout, fin, 1, sn=sn)
    _conv_keys(shapes, "layer_up_last", num_classes + 1, base // 2, 1, sn=False)
    return shapes


def random_state_dict(shapes, seed=0):
    """Random but well-scaled values for every key."""
    rng = np.random.default_rng(seed)
    sd = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = np.zeros((), np.int64)
        elif key.endswith(("weight_u", "weight_v")):
            v = rng.standard_normal(shape)
            sd[key] = (v / np.linalg.norm(v)).astype(np.float32)
        elif key.endswith("running_mean"):
            sd[key] = rng.normal(0, 0.3, shape).astype(np.float32)
        elif key.endswith("running_var"):
            sd[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        elif key.endswith("bias"):
            sd[key] = rng.normal(0, 0.1, shape).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            sd[key] = rng.normal(0, 1 / np.sqrt(fan_in), shape).astype(np.float32)
    for key in [k for k in sd if k.endswith(".weight_orig")]:
        # u, v as after training: a few power iterations, so sigma ~ the top
        # singular value (random u, v could give sigma ~ 0)
        w = sd[key].reshape(sd[key].shape[0], -1).astype(np.float64)
        u = sd[key[:-len("weight_orig")] + "weight_u"].astype(np.float64)
        for _ in range(5):
            v = w.T @ u
            v /= np.linalg.norm(v)
            u = w @ v
            u /= np.linalg.norm(u)
        sd[key[:-len("weight_orig")] + "weight_u"] = u.astype(np.float32)
        sd[key[:-len("weight_orig")] + "weight_v"] = v.astype(np.float32)
    return sd
