"""Derive Vigil's vehicle detector from the Ultralytics YOLO11-seg export that ships in a
registry package.

The shipped export is traced at a fixed 1x3x640x640 input, carries a mask head Vigil never
reads, and decodes boxes with anchor tables baked for 640x640. The derived graph keeps
the same weights and arithmetic but:

* takes any batch and any height and width that are multiples of 32, so a 640x360
  camera frame is padded to 640x384 (40 % fewer pixels than the square) and several
  cameras' frames can go through one run;
* drops the mask prototypes and mask coefficients (a fifth of the work);
* stops before the anchor-dependent step: output `distances` is [N, 4 + classes, A],
  rows 0-3 the left, top, right and bottom distances from each anchor in stride units
  (after the DFL), then the class scores. The caller adds the anchors, which depend on
  the input size (models/src/detector.rs, `YoloDistances`).

Usage: derive_detector.py SOURCE.onnx DEST.onnx
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def fail(message):
    sys.exit(f"derive_detector: {message}")


def constants(graph):
    """Constant tensors by name: Constant nodes' values and initializers alike."""
    found = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = (node.attribute[0].t, numpy_helper.to_array(node.attribute[0].t))
    for init in graph.initializer:
        found[init.name] = (init, numpy_helper.to_array(init))
    return found


def set_constant(tensor, array):
    tensor.CopyFrom(numpy_helper.from_array(np.asarray(array, dtype=np.int64), tensor.name))


def toposort(graph):
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = [n for n in pending if not all(i in ready for i in n.input)]
        for node in pending:
            if node not in rest:
                ordered.append(node)
                ready.update(node.output)
        if len(rest) == len(pending):
            fail("the graph has a cycle or an input nothing produces")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def prune(graph):
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    inits = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    del graph.value_info[:]


def derive(model):
    graph = model.graph
    toposort(graph)
    consts = constants(graph)
    by_output = {o: n for n in graph.node for o in n.output}

    if len(graph.input) != 1 or [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] != [1, 3, 640, 640]:
        fail("expected one input of shape [1, 3, 640, 640] (an Ultralytics export at imgsz=640)")
    dims = graph.input[0].type.tensor_type.shape.dim
    for dim, name in zip(dims, ["batch", None, "height", "width"]):
        if name:
            dim.ClearField("dim_value")
            dim.dim_param = name

    reshapes = [n for n in graph.node if n.op_type == "Reshape"]
    fixed = 0
    for node in reshapes:
        const_node, shape = consts.get(node.input[1], (None, None))
        if const_node is None:
            fail(f"{node.name}: its shape is not a constant")
        shape = shape.tolist()
        if node.name.endswith("attn/Reshape"):
            # (B, heads, 2*key+head, h*w): batch copied from the input, pixels inferred.
            set_constant(const_node, [0] + shape[1:3] + [-1])
        elif "attn/Reshape_" in node.name:
            # Back to (B, C, h, w): exactly the attention block's own input shape.
            attn = node.name.rsplit("/", 1)[0]
            qkv = by_output.get(f"{attn}/qkv/conv/Conv_output_0")
            if qkv is None:
                fail(f"{node.name}: cannot find the attention block's input")
            shape_name = f"{attn}/input_shape"
            if shape_name not in by_output:
                shape_node = helper.make_node("Shape", [qkv.input[0]], [shape_name], name=shape_name)
                graph.node.insert(list(graph.node).index(qkv), shape_node)
                by_output[shape_name] = shape_node
            node.input[1] = shape_name
        elif shape[0] == 1 and shape[-1] in (-1, 8400):
            # Head reshapes (B, C, -1) and the DFL's (B, 4, 16, A) / (B, 4, A).
            set_constant(const_node, [0] + shape[1:-1] + [-1])
        else:
            fail(f"{node.name}: unexpected reshape to {shape}")
        fixed += 1
    if fixed != 14:
        fail(f"expected the 14 reshapes of a YOLO11-seg export, rewrote {fixed}")

    # The DFL ends in (B, 4, A) distances; its two halves are left-top and right-bottom.
    slices = [n for n in graph.node if n.op_type == "Slice" and n.input[0].endswith("dfl/Reshape_1_output_0")]
    if len(slices) != 2:
        fail("cannot find the DFL's distance output")
    distances = slices[0].input[0]
    scores = next((n.output[0] for n in graph.node if n.op_type == "Sigmoid" and n.input[0].endswith("/Concat_1_output_0")), None)
    if scores is None:
        fail("cannot find the class scores")

    # The shipped graph computes in half precision behind a cast; keep it, cast the
    # result back to f32.
    half = any(i.data_type == TensorProto.FLOAT16 for i in graph.initializer)
    joined = "vigil/distances_and_scores"
    graph.node.append(helper.make_node("Concat", [distances, scores], [joined], axis=1, name=joined))
    out = "distances"
    if half:
        graph.node.append(helper.make_node("Cast", [joined], [out], to=TensorProto.FLOAT, name="vigil/cast_out"))
    else:
        graph.node.append(helper.make_node("Identity", [joined], [out], name="vigil/out"))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", None, "anchors"]))
    prune(graph)
    toposort(graph)
    model.doc_string = "Derived by Vigil scripts/derive_detector.py: dynamic batch and size, no mask head, DFL distances + class scores"
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 3:
        fail("usage: derive_detector.py SOURCE.onnx DEST.onnx")
    model = onnx.load(sys.argv[1])
    onnx.save(derive(model), sys.argv[2])


if __name__ == "__main__":
    main()
