"""dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``) as a torch module, its
weights read from dlib's own binary file, without dlib. ``dlib_resnet.py`` runs it batched (on CUDA when
the pipeline's device is CUDA) and keeps ``dlib.face_recognition_model_v1`` as the reference and the
fall-back; ``tests/test_dlib_torch.py`` proves both give the same descriptors on real faces.

Where every rule below comes from (dlib's source, read, not guessed):

* The network is ``anet_type`` of dlib's ``tools/python/src/face_recognition.cpp`` (the same as
  ``examples/dnn_face_recognition_ex.cpp``)::

      loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
          max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

  with ``block = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, SUBNET>>>>>``,
  ``ares = relu<add_prev1<block<N,1,tag1<SUBNET>>>>`` and
  ``ares_down = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,2,tag1<SUBNET>>>>>>>``;
  alevel4 = 3 x ares 32, alevel3 = ares_down 64 + 3 x ares 64, alevel2 and alevel1 = ares_down + 2 x ares
  (128, 256), alevel0 = ares_down 256.
* Serialisation (``dlib/serialize.h``): an integer is one control byte (low nibble: how many bytes follow,
  0x80: negative) then its bytes, little-endian; ``0`` is ``01 00``. A bool is the character ``'1'`` or
  ``'0'``. A string is its length (an integer) then its bytes. A scalar float is ``float_details``: an
  int64 mantissa and an int16 exponent, value ``mantissa * 2**exponent``.
* A tensor (``dlib/cuda/tensor.h``) is version 2, then num_samples, k, nr, nc, then the values as raw
  little-endian float32 (not float_details). An ``alias_tensor`` is version 1 and its four sizes.
* ``add_loss_layer`` (``dlib/dnn/core.h``) writes version 1, the loss, then the network; ``add_layer``
  writes its version (2), its subnetwork first, then its layer's details, three bools, ``x_grad``,
  ``cached_output`` and (version 2) ``params_grad``; the innermost ``add_layer`` over the input layer
  writes version 2 or 3, the input layer, the details, three bools, ``x_grad``, ``cached_output``,
  ``grad_final`` and (version 3) the sample expansion factor; ``add_tag_layer`` and ``add_skip_layer``
  write version 1 and their subnetwork. So the file is the type, walked from the loss inwards.
* Layers (``dlib/dnn/layers.h``): ``con_4``/``con_5``: params (filters OIHW then biases), num_filters,
  nr, nc, stride_y, stride_x, padding_y, padding_x, the filters' and biases' alias tensors, four float
  multipliers (and ``use_bias`` in con_5); padding defaults to ``stride != 1 ? 0 : size/2``, so the
  stride-2 convolutions are unpadded. ``affine_`` (what a trained net's ``bn_con`` becomes): params
  (gamma then beta), their alias tensors, the mode; ``out = x * gamma[k] + beta[k]``. ``max_pool_2`` /
  ``avg_pool_2``: nr, nc, strides, paddings (0 here); output size ``1 + (n + 2p - window) / stride``;
  ``avg_pool_everything`` is a window of the whole input. ``fc_2``: num_outputs, num_inputs, params,
  the weights' (num_inputs x num_outputs) and biases' alias tensors, the bias mode, four multipliers;
  ``out = x @ W``. ``add_prev_`` adds two tensors of different sizes as ``cpu::add`` does: the output has
  the larger size on every axis and each input is zero outside its own extent (``dlib/cuda/cpu_dlib.cpp``).
  That matters twice: a down block's shortcut has half the channels of its output (zero-padded), and at
  alevel1 the 8x8 input gives a 3x3 convolution but a 4x4 average pool, so the block's output is 4x4.
* Input (``dlib/dnn/input.h``): ``input_rgb_image_sized<150>`` subtracts the per-channel means stored
  in the file (122.782, 117.001, 104.298) and divides by 256; channel planes R, G, B.

Depends only on numpy and torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DlibResNet", "convert", "read_network", "CONVERTER_VERSION"]

#: Bumped whenever the conversion's output changes, so an old converted file is never reused.
CONVERTER_VERSION = 1
INPUT_SIZE = 150


# -- the network's type, as dlib's face_recognition.cpp spells it ----------------------------------------


@dataclass(frozen=True)
class Node:
    """One level of dlib's nested network type: an ``add_layer`` with its layer (``kind``: con, affine,
    relu, max_pool, avg_pool, add_prev, fc) and its expected hyper-parameters, or a ``tag``/``skip``."""

    kind: str
    args: tuple = ()


def _ares(n: int) -> list[Node]:
    conv = Node("con", (n, 3, 3, 1, 1))
    return [
        Node("relu"),
        Node("add_prev", (1,)),
        Node("affine"),
        conv,
        Node("relu"),
        Node("affine"),
        conv,
        Node("tag", (1,)),
    ]


def _ares_down(n: int) -> list[Node]:
    return [
        Node("relu"),
        Node("add_prev", (2,)),
        Node("avg_pool", (2, 2, 2, 2)),
        Node("skip", (1,)),
        Node("tag", (2,)),
        Node("affine"),
        Node("con", (n, 3, 3, 1, 1)),
        Node("relu"),
        Node("affine"),
        Node("con", (n, 3, 3, 2, 2)),
        Node("tag", (1,)),
    ]


#: (output channels, down-sampling first block?, blocks) of alevel0 ... alevel4, outermost first.
LEVELS = ((256, True, 1), (256, True, 3), (128, True, 3), (64, True, 4), (32, False, 3))


def network_type() -> list[Node]:
    """The network below the loss, outermost first, ending with the convolution on the input layer."""
    nodes = [Node("fc", (128,)), Node("avg_pool", (0, 0, 1, 1))]
    for channels, down, blocks in LEVELS:
        for i in range(blocks):
            nodes += _ares_down(channels) if down and i == blocks - 1 else _ares(channels)
    return nodes + [Node("max_pool", (3, 3, 2, 2)), Node("relu"), Node("affine"), Node("con", (32, 7, 7, 2, 2))]


# -- dlib's serialisation ---------------------------------------------------------------------------------


class Reader:
    """dlib's ``deserialize`` for the types this file holds, over the file's bytes."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"at byte {self.pos}: {what}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"the file ends {self.pos + n - len(self.data)} bytes early")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise self.fail(f"{control:#04x} is not an integer's control byte")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def bool(self) -> bool:
        char = self.take(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"{char!r} is not a bool")
        return char == b"1"

    def string(self) -> str:
        return self.take(self.int()).decode("latin-1")

    def float(self) -> float:
        if self.data[self.pos] & 0x70:
            raise self.fail("an old ASCII float (not written by any dlib this file can come from)")
        mantissa, exponent = self.int(), self.int()
        if exponent in (32000, 32001, 32002):  # float_details::is_inf, is_ninf, is_nan
            return (float("inf"), float("-inf"), float("nan"))[exponent - 32000]
        return float(np.ldexp(float(mantissa), exponent))

    def version(self, allowed: tuple[int, ...], what: str) -> int:
        at, value = self.pos, self.int()
        if value not in allowed:
            raise ValueError(f"at byte {at}: {what} has version {value}, expected one of {allowed}")
        return value

    def tensor(self) -> np.ndarray:
        self.version((2,), "a tensor")
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        self.version((1,), "an alias_tensor")
        return tuple(self.int() for _ in range(4))

    def name(self, *allowed: str) -> str:
        at, value = self.pos, self.string()
        if value not in allowed:
            raise ValueError(f"at byte {at}: found layer {value!r}, expected {' or '.join(allowed)}")
        return value


@dataclass
class Layer:
    """One computational layer as the file holds it: its kind, hyper-parameters and weight arrays."""

    kind: str
    params: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


def _details(r: Reader, node: Node) -> Layer:
    """One layer's details (the part ``serialize(item.details, out)`` writes), checked against the type."""
    kind = node.kind
    layer = Layer(kind)
    if kind == "con":
        version = r.name("con_4", "con_5")
        params = r.tensor().reshape(-1)
        filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        w_shape, b_shape = r.alias(), r.alias()
        multipliers = [r.float() for _ in range(4)]
        use_bias = r.bool() if version == "con_5" else True
        want = node.args
        default_pad = (0 if sy != 1 else nr // 2, 0 if sx != 1 else nc // 2)
        if (filters, nr, nc, sy, sx) != want or (py, px) != default_pad:
            raise r.fail(
                f"con {(filters, nr, nc, sy, sx, py, px)} where the network type has {want}, padding {default_pad}"
            )
        w_size = int(np.prod(w_shape))
        if w_shape[0] != filters or not use_bias or params.size != w_size + filters or b_shape != (1, filters, 1, 1):
            raise r.fail(f"con weights {w_shape} and biases {b_shape} do not fill its {params.size} parameters")
        layer.params = {"stride": sy, "padding": py, "lr_multipliers": multipliers}
        layer.arrays = {"weight": params[:w_size].reshape(w_shape), "bias": params[w_size:]}
    elif kind == "affine":
        r.name("affine_")
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias(), r.alias()
        mode = r.int()
        k = gamma[1]
        if mode != 0 or gamma != beta or gamma != (1, k, 1, 1) or params.size != 2 * k:  # 0: CONV_MODE
            raise r.fail(f"affine of mode {mode}, gamma {gamma}, beta {beta}, {params.size} parameters")
        layer.arrays = {"weight": params[:k], "bias": params[k:]}
    elif kind == "relu":
        r.name("relu_")
    elif kind == "add_prev":
        r.name("add_prev_")
    elif kind in ("max_pool", "avg_pool"):
        r.name(f"{kind}_2")
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        if (nr, nc, sy, sx) != node.args or (py, px) != (0, 0):
            raise r.fail(f"{kind} {(nr, nc, sy, sx, py, px)} where the network type has {node.args}, no padding")
        layer.params = {"window": nr, "stride": sy}
    elif kind == "fc":
        r.name("fc_2")
        outputs, inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        weights, _biases = r.alias(), r.alias()
        bias_mode = r.int()
        _multipliers = [r.float() for _ in range(4)]
        if outputs != node.args[0] or weights != (inputs, outputs, 1, 1) or params.size != inputs * outputs:
            raise r.fail(f"fc of {inputs} -> {outputs} with weights {weights} and {params.size} parameters")
        if bias_mode != 1:  # fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
            raise r.fail(f"fc with bias mode {bias_mode}, expected fc_no_bias (1)")
        layer.arrays = {"weight": params.reshape(inputs, outputs).T.copy()}  # torch's Linear is (out, in)
    else:
        raise ValueError(f"no reader for layer kind {kind!r}")
    return layer


def _layer_state(r: Reader, version: int) -> None:
    """What ``add_layer`` writes after its details: three bools and its (cleaned, empty) tensors."""
    for _ in range(3):
        r.bool()
    for _ in range(3 if version == 2 else 2):
        r.tensor()


@dataclass
class Network:
    """What the file holds: the input layer's channel means and the computational layers, input first."""

    means: tuple[float, float, float]
    layers: list[Layer]
    loss: dict


def read_network(path: str | os.PathLike) -> Network:
    """Parse the whole ``.dat`` as dlib's ``deserialize(file) >> net`` does for ``anet_type``; every byte
    must be used, and every hyper-parameter must be the one the network's type names."""
    r = Reader(Path(path).read_bytes())
    r.version((1,), "add_loss_layer")
    r.name("loss_metric_2")
    loss = {"margin": r.float(), "distance_threshold": r.float()}
    nodes = network_type()
    versions = []
    for node in nodes[:-1]:  # outermost first: each level writes its version, then its subnetwork
        versions.append(r.version((1,) if node.kind in ("tag", "skip") else (1, 2), node.kind))
    innermost = r.version((2, 3), "the add_layer over the input layer")
    r.name("input_rgb_image_sized")
    means = (r.float(), r.float(), r.float())
    if (r.int(), r.int()) != (INPUT_SIZE, INPUT_SIZE):
        raise r.fail(f"the input layer is not {INPUT_SIZE}x{INPUT_SIZE}")
    layers = [_details(r, nodes[-1])]
    for _ in range(3):
        r.bool()
    for _ in range(3):
        r.tensor()
    if innermost == 3:
        r.int()  # the sample expansion factor
    for node, version in zip(reversed(nodes[:-1]), reversed(versions)):  # back outwards: details, state
        if node.kind in ("tag", "skip"):
            layers.append(Layer(node.kind, {"id": node.args[0]}))
            continue
        if version != 2:
            raise r.fail(f"add_layer version {version} (params_grad missing): not a file this reader knows")
        layers.append(_details(r, node))
        _layer_state(r, version)
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} bytes left after the network")
    return Network(means, layers, loss)


# -- the torch module --------------------------------------------------------------------------------------


class Affine(nn.Module):
    """dlib's ``affine_`` in CONV_MODE: a per-channel scale and shift (a trained net's batch norm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias[:, None, None], x, self.weight[:, None, None])


def padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev_``: the sum over the larger extent on every axis, each side zero outside its own."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

    def grow(t: torch.Tensor) -> torch.Tensor:
        c, h, w = (s - n for s, n in zip(shape, t.shape[1:]))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return grow(a) + grow(b)


class Block(nn.Module):
    """``ares`` (stride 1, identity shortcut) or ``ares_down`` (stride 2, 2x2 average-pooled shortcut)."""

    def __init__(self, inputs: int, outputs: int, down: bool):
        super().__init__()
        self.down = down
        stride = 2 if down else 1
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, padding=0 if down else 1)
        self.affine1 = Affine(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, padding=1)
        self.affine2 = Affine(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(padded_add(y, shortcut))


class DlibResNet(nn.Module):
    """dlib's face descriptor network. Input: (n, 3, 150, 150) RGB pixels in 0..255 (float), as dlib's
    input layer takes a ``matrix<rgb_pixel>``; output: (n, 128) descriptors, not normalised (dlib's are
    not either; their length is about 1)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("means", torch.tensor([122.782, 117.001, 104.298]))
        self.conv = nn.Conv2d(3, 32, 7, 2, padding=0)
        self.affine = Affine(32)
        blocks, channels = [], 32
        for outputs, down, count in reversed(LEVELS):  # alevel4 (next to the input) first
            for i in range(count):
                first_down = down and i == 0
                blocks.append(Block(channels, outputs, first_down))
                channels = outputs
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(256, 128, bias=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels - self.means[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.affine(self.conv(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))


def _computational(layers: list[Layer]) -> Iterator[Layer]:
    return (layer for layer in layers if layer.kind in ("con", "affine", "fc"))


def convert(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the ``.dat`` and return a complete ``DlibResNet`` state_dict (loads with ``strict=True``).
    Raises ``ValueError`` when the file is not this network, or a weight does not fit its place."""
    network = read_network(path)
    model = DlibResNet()
    template = model.state_dict()
    # The file's layers, input first, and the module's in the same order: conv, affine, then per block
    # conv1, affine1, conv2, affine2 (dlib's inner con/affine pair is the block's first), then fc.
    targets = ["conv", "affine"]
    for i in range(len(model.blocks)):
        targets += [f"blocks.{i}.conv1", f"blocks.{i}.affine1", f"blocks.{i}.conv2", f"blocks.{i}.affine2"]
    targets.append("fc")
    sources = list(_computational(network.layers))
    if len(sources) != len(targets):
        raise ValueError(f"the file has {len(sources)} weight layers, the module {len(targets)}")
    out: dict[str, torch.Tensor] = {}
    for prefix, layer in zip(targets, sources):
        module = model.get_submodule(prefix)
        expected = {nn.Conv2d: "con", Affine: "affine", nn.Linear: "fc"}[type(module)]
        if layer.kind != expected:
            raise ValueError(f"{prefix} is a {expected} layer, the file has {layer.kind} there")
        if layer.kind == "con" and (module.stride[0], module.padding[0]) != (
            layer.params["stride"],
            layer.params["padding"],
        ):
            raise ValueError(
                f"{prefix}: stride/padding {module.stride[0], module.padding[0]} != the file's {layer.params}"
            )
        for name, array in layer.arrays.items():
            key = f"{prefix}.{name}"
            tensor = torch.from_numpy(np.ascontiguousarray(array)).to(template[key].dtype)
            if tuple(tensor.shape) != tuple(template[key].shape):
                raise ValueError(
                    f"{key}: the file's shape {tuple(tensor.shape)} != the module's {tuple(template[key].shape)}"
                )
            out[key] = tensor
    out["means"] = torch.tensor(network.means, dtype=torch.float32)
    missing = sorted(set(template) - set(out))
    if missing:
        raise ValueError(f"unfilled keys: {missing}")
    return {key: out[key] for key in template}
