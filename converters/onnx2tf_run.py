"""``python -m devicekit.converters.onnx2tf_run ARGS``: onnx2tf's command line, minus one memory trap.

onnx2tf builds a Keras functional model whose layers take the ONNX weights as
constant call arguments, then saves it with ``tf.saved_model.save``. Keras'
SavedModel writer stores the model config as JSON metadata, and the config
serialises every constant argument with ``ndarray.tolist()``: a Python float
object per weight, then JSON text. On basiccnn-pool3 (33 MB of weights) that
took onnx2tf from 13 s to 99 s and 1.8 to 2.8 GB resident; on basiccnn-pool1
(544 MB) it passed 21 GB and was killed.

The metadata only serves ``tf_keras.models.load_model``; devicekit reads the
SavedModel's graph and signature (TFLiteConverter.from_saved_model), which do
not change: on basiccnn-pool3 the SavedModel graph and onnx2tf's
float32 .tflite are byte-identical with and without this. So the functional
model's ``get_config`` says "not implemented", which the Keras writer handles
by leaving the config out (``require_config=False``).

It also keeps a residual Add in NHWC. onnx2tf 1.29's Add has a "rescue
guard" that compares the ONNX output shape (NCHW) with the TensorFlow one
(NHWC); for any [N, C, H, W] with C != H it finds them "mismatched" and
recomputes the add on both inputs transposed to NCHW. Every op after it then
works on an NCHW tensor: a depthwise conv after a residual add becomes a
grouped CONV_2D (mesh3d: 17 of 18), a per-channel multiply gets a TRANSPOSE
either side. Where both inputs are exactly the NHWC layout of the ONNX
shape (the map more than 1x1, every op after it one that takes an NHWC
tensor as it takes a conv's), the wrapper adds them as they are (the same
numbers, in NHWC). ``saved_model`` retries without this when onnx2tf fails.

It also stops onnx2tf once the SavedModel is written: its own float32 and
float16 .tflite files are never used (devicekit converts the SavedModel under
its policy), and each of them parses the whole flatbuffer into Python objects
(about 10x the weights in memory).
"""

from __future__ import annotations

import os
import sys


class _SavedModelWritten(BaseException):  # not an Exception: onnx2tf's `except Exception` must not catch it
    pass


def _stop(*args, **kwargs):
    raise _SavedModelWritten


def _no_config(self):
    raise NotImplementedError("devicekit: the Keras config of an onnx2tf model is not serialised (its weights would be written as JSON)")


# ops after a residual add that take its NHWC result as they take a conv's (tried: mesh3d, MobileNet-style blocks);
# anything else (Slice, Transpose, Reshape, Concat, ...) keeps onnx2tf's own NCHW add
NHWC_SAFE = {"Conv", "Mul", "Add", "Relu", "PRelu", "Clip", "MaxPool", "Pad", "Sigmoid", "HardSwish", "LeakyRelu"}


def _nhwc_add(make_node):
    """onnx2tf's Add, without the NCHW "rescue" of two NHWC inputs (see the module docstring)."""
    import tensorflow as tf

    def wrapped(*, graph_node, tf_layers_dict, **kwargs):
        make_node(graph_node=graph_node, tf_layers_dict=tf_layers_dict, **kwargs)
        out = graph_node.outputs[0]
        onnx_shape = list(out.shape) if out.shape is not None else []
        if len(onnx_shape) != 4 or not all(isinstance(d, int) for d in onnx_shape) or len(graph_node.inputs) != 2:
            return
        nhwc = [onnx_shape[0], onnx_shape[2], onnx_shape[3], onnx_shape[1]]
        ins = [tf_layers_dict.get(i.name, {}).get("tf_node") for i in graph_node.inputs]
        got = tf_layers_dict.get(out.name, {}).get("tf_node")
        if nhwc == onnx_shape or onnx_shape[2] * onnx_shape[3] == 1 or got is None or list(got.shape) != onnx_shape:
            return  # 1x1 maps (decoded coordinates): both orders are the same memory, and onnx2tf's fits what follows
        if not all(c.op in NHWC_SAFE for c in out.outputs):
            return  # onnx2tf matches slices, transposes, reshapes after it to the NCHW result (ONet's edge padding)
        if all(t is not None and hasattr(t, "shape") and list(t.shape) == nhwc for t in ins):
            tf_layers_dict[out.name]["tf_node"] = tf.math.add(ins[0], ins[1], name=graph_node.name)
            tf_layers_dict[out.name]["nhwc"] = True  # what onnx2tf marks a conv's output: laid out NHWC

    return wrapped


def main() -> None:
    try:
        from onnx2tf.onnx2tf import main as onnx2tf_main
        from tf_keras.src.engine import functional
    except ImportError as exc:
        print(f"ERROR: onnx2tf is not installed ({exc.name})", file=sys.stderr)
        sys.exit(127)
    import tensorflow as tf
    from onnx2tf.ops import Add

    if not os.environ.get("DEVICEKIT_ONNX2TF_NCHW_ADD"):
        Add.make_node = _nhwc_add(Add.make_node)
    functional.Functional.get_config = _no_config
    tf.lite.TFLiteConverter.from_keras_model = _stop
    tf.lite.TFLiteConverter.from_concrete_functions = _stop
    sys.argv = ["onnx2tf", *sys.argv[1:]]
    try:
        onnx2tf_main()
    except _SavedModelWritten:
        pass


if __name__ == "__main__":
    main()
