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

It also stops onnx2tf once the SavedModel is written: its own float32 and
float16 .tflite files are never used (devicekit converts the SavedModel under
its policy), and each of them parses the whole flatbuffer into Python objects
(about 10x the weights in memory).
"""

from __future__ import annotations

import sys


class _SavedModelWritten(BaseException):  # not an Exception: onnx2tf's `except Exception` must not catch it
    pass


def _stop(*args, **kwargs):
    raise _SavedModelWritten


def _no_config(self):
    raise NotImplementedError("devicekit: the Keras config of an onnx2tf model is not serialised (its weights would be written as JSON)")


def main() -> None:
    try:
        from onnx2tf.onnx2tf import main as onnx2tf_main
        from tf_keras.src.engine import functional
    except ImportError as exc:
        print(f"ERROR: onnx2tf is not installed ({exc.name})", file=sys.stderr)
        sys.exit(127)
    import tensorflow as tf

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
