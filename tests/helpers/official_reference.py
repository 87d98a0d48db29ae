"""Independent references for the attention modules: their forward passes written with
``torch.nn.functional`` from the official code (and, for GAM, which has none, from the paper),
reading parameters by the official key names. Nothing here uses epsanet's modules, so comparing
against these checks epsanet's modules, models and checkpoint key maps.

``official_state_dict`` writes random checkpoints with the official ResNets' keys and shapes, as
the official code's modules name them (Jongchan/attention-module for CBAM / BAM, wofmanaf/SA-Net,
implus/PytorchInsight for SGE; torchvision names for the ResNet itself).
"""
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F

State = Dict[str, torch.Tensor]
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def batch_norm(x: torch.Tensor, sd: State, prefix: str) -> torch.Tensor:
    """Eval-mode BatchNorm (1-D or 2-D) with the parameters under ``prefix``."""
    return F.batch_norm(x, sd[prefix + "running_mean"], sd[prefix + "running_var"], sd[prefix + "weight"],
                        sd[prefix + "bias"], training=False, eps=1e-5)


# ---- the official modules' forward passes ----

def cbam(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    """Jongchan/attention-module ``CBAM``: ChannelGate (pool types avg then max), SpatialGate."""
    def mlp(v):
        hidden = F.relu(F.linear(v, sd[p + "ChannelGate.mlp.1.weight"], sd[p + "ChannelGate.mlp.1.bias"]))
        return F.linear(hidden, sd[p + "ChannelGate.mlp.3.weight"], sd[p + "ChannelGate.mlp.3.bias"])

    size = x.shape[2:]
    avg = F.avg_pool2d(x, size, stride=size).flatten(1)
    mx = F.max_pool2d(x, size, stride=size).flatten(1)
    x = x * torch.sigmoid(mlp(avg) + mlp(mx)).unsqueeze(2).unsqueeze(3)
    compressed = torch.cat((torch.max(x, 1)[0].unsqueeze(1), torch.mean(x, 1).unsqueeze(1)), 1)
    spatial = F.conv2d(compressed, sd[p + "SpatialGate.spatial.conv.weight"], padding=3)
    return x * torch.sigmoid(batch_norm(spatial, sd, p + "SpatialGate.spatial.bn."))


def bam(x: torch.Tensor, sd: State, p: str, dilated: int = 2) -> torch.Tensor:
    """Jongchan/attention-module ``BAM``: ``(1 + sigmoid(channel * spatial)) * x``."""
    c, s = p + "channel_att.gate_c.", p + "spatial_att.gate_s."
    height = x.shape[2]
    pooled = F.avg_pool2d(x, height, stride=height).flatten(1)  # the official H x H window
    channel = F.linear(pooled, sd[c + "gate_c_fc_0.weight"], sd[c + "gate_c_fc_0.bias"])
    channel = F.relu(batch_norm(channel, sd, c + "gate_c_bn_1."))
    channel = F.linear(channel, sd[c + "gate_c_fc_final.weight"], sd[c + "gate_c_fc_final.bias"])
    spatial = F.conv2d(x, sd[s + "gate_s_conv_reduce0.weight"], sd[s + "gate_s_conv_reduce0.bias"])
    spatial = F.relu(batch_norm(spatial, sd, s + "gate_s_bn_reduce0."))
    for i in range(dilated):
        spatial = F.conv2d(spatial, sd[s + f"gate_s_conv_di_{i}.weight"], sd[s + f"gate_s_conv_di_{i}.bias"],
                           padding=4, dilation=4)
        spatial = F.relu(batch_norm(spatial, sd, s + f"gate_s_bn_di_{i}."))
    spatial = F.conv2d(spatial, sd[s + "gate_s_conv_final.weight"], sd[s + "gate_s_conv_final.bias"])
    attention = 1 + torch.sigmoid(channel.unsqueeze(2).unsqueeze(3).expand_as(x) * spatial.expand_as(x))
    return attention * x


def shuffle_attention(x: torch.Tensor, sd: State, p: str, groups: int = 64) -> torch.Tensor:
    """wofmanaf/SA-Net ``sa_layer``."""
    b, c, h, w = x.shape
    x = x.reshape(b * groups, -1, h, w)
    x_0, x_1 = x.chunk(2, dim=1)
    xn = x_0 * torch.sigmoid(sd[p + "cweight"] * F.adaptive_avg_pool2d(x_0, 1) + sd[p + "cbias"])
    xs = F.group_norm(x_1, x_1.shape[1], sd[p + "gn.weight"], sd[p + "gn.bias"])
    xs = x_1 * torch.sigmoid(sd[p + "sweight"] * xs + sd[p + "sbias"])
    out = torch.cat([xn, xs], dim=1).reshape(b, -1, h, w)
    return out.reshape(b, 2, -1, h, w).permute(0, 2, 1, 3, 4).reshape(b, -1, h, w)


def sge(x: torch.Tensor, sd: State, p: str, groups: int = 64) -> torch.Tensor:
    """implus/PytorchInsight ``SpatialGroupEnhance``."""
    b, c, h, w = x.shape
    x = x.view(b * groups, -1, h, w)
    xn = (x * F.adaptive_avg_pool2d(x, 1)).sum(dim=1, keepdim=True)
    t = xn.view(b * groups, -1)
    t = t - t.mean(dim=1, keepdim=True)
    t = t / (t.std(dim=1, keepdim=True) + 1e-5)
    t = t.view(b, groups, h, w) * sd[p + "weight"] + sd[p + "bias"]
    return (x * torch.sigmoid(t.view(b * groups, 1, h, w))).view(b, c, h, w)


def polarized(x: torch.Tensor, sd: State, p: str, sequential: bool) -> torch.Tensor:
    """DeLightCMU/PSA ``PSA_p`` (parallel) and ``PSA_s`` (sequential)."""
    def channel_only(x):
        batch, _, height, width = x.shape
        value = F.conv2d(x, sd[p + "conv_v_right.weight"]).view(batch, -1, height * width)
        mask = F.softmax(F.conv2d(x, sd[p + "conv_q_right.weight"]).view(batch, 1, height * width), dim=2)
        context = torch.matmul(value, mask.transpose(1, 2)).unsqueeze(-1)
        if sequential:
            context = F.conv2d(context, sd[p + "conv_up.0.weight"], sd[p + "conv_up.0.bias"])
            context = F.layer_norm(context, context.shape[1:], sd[p + "conv_up.1.weight"], sd[p + "conv_up.1.bias"])
            context = F.conv2d(F.relu(context), sd[p + "conv_up.3.weight"], sd[p + "conv_up.3.bias"])
        else:
            context = F.conv2d(context, sd[p + "conv_up.weight"])
        return x * torch.sigmoid(context)

    def spatial_only(x):
        batch, _, height, width = x.shape
        query = F.adaptive_avg_pool2d(F.conv2d(x, sd[p + "conv_q_left.weight"]), 1)
        query = query.view(batch, -1, 1).permute(0, 2, 1)
        value = F.conv2d(x, sd[p + "conv_v_left.weight"]).view(batch, -1, height * width)
        if sequential:
            context = torch.matmul(query, F.softmax(value, dim=2))
        else:
            context = F.softmax(torch.matmul(query, value), dim=2)
        return x * torch.sigmoid(context.view(batch, 1, height, width))

    if sequential:
        return spatial_only(channel_only(x))
    return spatial_only(x) + channel_only(x)


def coord(x: torch.Tensor, sd: State, p: str) -> torch.Tensor:
    """houqb/CoordAttention ``CoordAtt`` (eval-mode BatchNorm, h_swish = x * relu6(x + 3) / 6)."""
    n, c, h, w = x.shape
    x_h = F.adaptive_avg_pool2d(x, (None, 1))
    x_w = F.adaptive_avg_pool2d(x, (1, None)).permute(0, 1, 3, 2)
    y = batch_norm(F.conv2d(torch.cat([x_h, x_w], dim=2), sd[p + "conv1.weight"], sd[p + "conv1.bias"]), sd, p + "bn1.")
    y = y * F.relu6(y + 3) / 6
    x_h, x_w = torch.split(y, [h, w], dim=2)
    a_h = torch.sigmoid(F.conv2d(x_h, sd[p + "conv_h.weight"], sd[p + "conv_h.bias"]))
    a_w = torch.sigmoid(F.conv2d(x_w.permute(0, 1, 3, 2), sd[p + "conv_w.weight"], sd[p + "conv_w.bias"]))
    return x * a_w * a_h


def ema(x: torch.Tensor, sd: State, p: str, factor: int = 32) -> torch.Tensor:
    """YOLOonMe/EMA-attention-module ``EMA``."""
    b, c, h, w = x.size()
    group_x = x.reshape(b * factor, -1, h, w)
    x_h = F.adaptive_avg_pool2d(group_x, (None, 1))
    x_w = F.adaptive_avg_pool2d(group_x, (1, None)).permute(0, 1, 3, 2)
    hw = F.conv2d(torch.cat([x_h, x_w], dim=2), sd[p + "conv1x1.weight"], sd[p + "conv1x1.bias"])
    x_h, x_w = torch.split(hw, [h, w], dim=2)
    x1 = group_x * x_h.sigmoid() * x_w.permute(0, 1, 3, 2).sigmoid()
    x1 = F.group_norm(x1, x1.shape[1], sd[p + "gn.weight"], sd[p + "gn.bias"])
    x2 = F.conv2d(group_x, sd[p + "conv3x3.weight"], sd[p + "conv3x3.bias"], padding=1)
    x11 = F.softmax(F.adaptive_avg_pool2d(x1, 1).reshape(b * factor, -1, 1).permute(0, 2, 1), -1)
    x12 = x2.reshape(b * factor, c // factor, -1)
    x21 = F.softmax(F.adaptive_avg_pool2d(x2, 1).reshape(b * factor, -1, 1).permute(0, 2, 1), -1)
    x22 = x1.reshape(b * factor, c // factor, -1)
    weights = (torch.matmul(x11, x12) + torch.matmul(x21, x22)).reshape(b * factor, 1, h, w)
    return (group_x * weights.sigmoid()).reshape(b, c, h, w)


def gam(x: torch.Tensor, sd: State, p: str, groups: int) -> torch.Tensor:
    """GAM from the paper's equations: ``F2 = sigmoid(Mc(F1)) * F1``, ``F3 = sigmoid(Ms(F2)) * F2``,
    with Mc a channel MLP on the permuted features and Ms two 7x7 convolutions with BatchNorm;
    grouped convolutions get a channel shuffle between them."""
    permuted = x.permute(0, 2, 3, 1)
    mc = F.linear(F.relu(F.linear(permuted, sd[p + "channel_fc1.weight"], sd[p + "channel_fc1.bias"])),
                  sd[p + "channel_fc2.weight"], sd[p + "channel_fc2.bias"])
    x = x * torch.sigmoid(mc.permute(0, 3, 1, 2))
    ms = F.conv2d(x, sd[p + "spatial_conv1.weight"], padding=3, groups=groups)
    ms = F.relu(batch_norm(ms, sd, p + "spatial_bn1."))
    b, c, h, w = ms.shape
    ms = ms.view(b, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(b, c, h, w)
    ms = batch_norm(F.conv2d(ms, sd[p + "spatial_conv2.weight"], padding=3, groups=groups), sd, p + "spatial_bn2.")
    return x * torch.sigmoid(ms)


# ---- the official ResNets (torchvision layout) ----

Attention = Callable[[torch.Tensor, State, str], torch.Tensor]


def resnet(x: torch.Tensor, sd: State, layers: Sequence[int], block_attention: Optional[Attention] = None,
           block_attention_name: str = "", stage_attention: Optional[Attention] = None) -> torch.Tensor:
    """Eval-mode forward of the official attention ResNets: torchvision's bottleneck ResNet with
    ``block_attention`` on every ``bn3`` output (stored as ``block_attention_name``) and
    ``stage_attention`` (``bam1..3``) after ``layer1..3``. The head is the global average; the
    official ``AvgPool2d(7)`` of CBAM / BAM gives the same at 224 px."""
    x = F.relu(batch_norm(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1."))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    for stage, blocks in enumerate(layers, 1):
        for block in range(blocks):
            p = f"layer{stage}.{block}."
            stride = 2 if stage > 1 and block == 0 else 1
            out = F.relu(batch_norm(F.conv2d(x, sd[p + "conv1.weight"]), sd, p + "bn1."))
            out = F.relu(batch_norm(F.conv2d(out, sd[p + "conv2.weight"], stride=stride, padding=1), sd, p + "bn2."))
            out = batch_norm(F.conv2d(out, sd[p + "conv3.weight"]), sd, p + "bn3.")
            residual = x
            if block == 0:
                residual = batch_norm(F.conv2d(x, sd[p + "downsample.0.weight"], stride=stride),
                                      sd, p + "downsample.1.")
            if block_attention is not None:
                out = block_attention(out, sd, p + block_attention_name + ".")
            x = F.relu(out + residual)
        if stage_attention is not None and stage < len(layers):
            x = stage_attention(x, sd, f"bam{stage}.")
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


def _bn_entries(prefix: str, channels: int) -> Dict[str, tuple]:
    return {prefix + k: ((channels,) if k != "num_batches_tracked" else ()) for k in BN_KEYS}


def attention_shapes(kind: str, channels: int) -> Dict[str, tuple]:
    if kind == "cbam":
        hidden = channels // 16
        return {"ChannelGate.mlp.1.weight": (hidden, channels), "ChannelGate.mlp.1.bias": (hidden,),
                "ChannelGate.mlp.3.weight": (channels, hidden), "ChannelGate.mlp.3.bias": (channels,),
                "SpatialGate.spatial.conv.weight": (1, 2, 7, 7), **_bn_entries("SpatialGate.spatial.bn.", 1)}
    if kind == "bam":
        hidden, c, s = channels // 16, "channel_att.gate_c.", "spatial_att.gate_s."
        shapes = {c + "gate_c_fc_0.weight": (hidden, channels), c + "gate_c_fc_0.bias": (hidden,),
                  **_bn_entries(c + "gate_c_bn_1.", hidden),
                  c + "gate_c_fc_final.weight": (channels, hidden), c + "gate_c_fc_final.bias": (channels,),
                  s + "gate_s_conv_reduce0.weight": (hidden, channels, 1, 1), s + "gate_s_conv_reduce0.bias": (hidden,),
                  **_bn_entries(s + "gate_s_bn_reduce0.", hidden)}
        for i in range(2):
            shapes.update({s + f"gate_s_conv_di_{i}.weight": (hidden, hidden, 3, 3),
                           s + f"gate_s_conv_di_{i}.bias": (hidden,),
                           **_bn_entries(s + f"gate_s_bn_di_{i}.", hidden)})
        shapes.update({s + "gate_s_conv_final.weight": (1, hidden, 1, 1), s + "gate_s_conv_final.bias": (1,)})
        return shapes
    if kind == "sa":
        half = channels // 128
        return {**{k: (1, half, 1, 1) for k in ("cweight", "cbias", "sweight", "sbias")},
                "gn.weight": (half,), "gn.bias": (half,)}
    if kind == "sge":
        return {"weight": (1, 64, 1, 1), "bias": (1, 64, 1, 1)}
    raise ValueError(kind)


def official_shapes(attention: str, layers: Sequence[int]) -> Dict[str, tuple]:
    """Key -> shape of the official ``attention`` ResNet ('cbam', 'bam', 'sa' or 'sge')."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **_bn_entries("bn1.", 64)}
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers), 1):
        for block in range(blocks):
            p = f"layer{stage}.{block}."
            shapes.update({p + "conv1.weight": (planes, inplanes, 1, 1), **_bn_entries(p + "bn1.", planes),
                           p + "conv2.weight": (planes, planes, 3, 3), **_bn_entries(p + "bn2.", planes),
                           p + "conv3.weight": (planes * 4, planes, 1, 1), **_bn_entries(p + "bn3.", planes * 4)})
            if block == 0:
                shapes.update({p + "downsample.0.weight": (planes * 4, inplanes, 1, 1),
                               **_bn_entries(p + "downsample.1.", planes * 4)})
            if attention != "bam":
                shapes.update({p + attention + "." + k: v for k, v in attention_shapes(attention, planes * 4).items()})
            inplanes = planes * 4
        if attention == "bam" and stage < len(layers):
            shapes.update({f"bam{stage}." + k: v for k, v in attention_shapes("bam", inplanes).items()})
    shapes.update({"fc.weight": (1000, 2048), "fc.bias": (1000,)})
    return shapes


def random_state(shapes: Dict[str, tuple], generator: torch.Generator) -> State:
    """Random float64 values that keep activations in range: fan-in scaled weights, BatchNorm
    scales around 1, positive variances."""
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.5
        elif len(shape) > 1:
            fan_in = torch.Size(shape[1:]).numel()
            state[key] = torch.randn(shape, generator=generator, dtype=torch.float64) / fan_in ** 0.5
        elif key.endswith("weight"):
            state[key] = torch.rand(shape, generator=generator, dtype=torch.float64) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator, dtype=torch.float64) * 0.2
    return state
