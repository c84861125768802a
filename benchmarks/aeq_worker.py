"""Static int8 with ai-edge-quantizer, run in its own venv (benchmarks/.venv-aeq: it pins ai-edge-litert 2.3.0,
the project pins 2.1.0).

    python aeq_worker.py FP32.tflite CALIB.npy OUT.tflite

CALIB.npy holds the calibration inputs as devicekit feeds PyTorch (NCHW, normalised float32); they are put in
the layout of the file's signature input (NHWC for onnx2tf-made files). Recipe: ``static_wi8_ai8`` (int8
weights per channel, int8 activations, every op AEQ supports). AEQ keys its calibration by tensor name, and
devicekit strips the names of intermediate tensors (converters/tflite_edit.strip_names), so unnamed tensors
get ``t<index>`` first (names only: weights and graph unchanged). Prints one JSON line.
"""

import json
import sys
import time


def name_tensors(data: bytes) -> tuple[bytes, int]:
    """``data`` with every unnamed tensor called ``t<index>`` (``sg<k>_t<index>`` past the first subgraph)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    named = 0
    for k, sg in enumerate(model.subgraphs):
        for i, t in enumerate(sg.tensors):
            if not t.name:
                t.name = (f"sg{k}_" if k else "") + f"t{i}"
                named += 1
    builder = flatbuffers.Builder(len(data))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), named


def main(src: str, calib_npy: str, out: str) -> None:
    import importlib.metadata
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    t0 = time.perf_counter()
    with open(src, "rb") as f:
        data, renamed = name_tensors(f.read())
    src = out + ".named-fp32.tflite"
    with open(src, "wb") as f:
        f.write(data)
    it = Interpreter(model_path=src)
    sigs = it.get_signature_list()
    if not sigs:
        raise SystemExit("error: the fp32 file has no signature (ai-edge-quantizer calibrates by signature)")
    key = next(iter(sigs))
    runner = it.get_signature_runner(key)
    (name, detail), = runner.get_input_details().items()
    shape = tuple(int(s) for s in detail["shape"])
    calib = np.load(calib_npy).astype(np.float32)
    if calib.shape[1:] != shape[1:] and calib.transpose(0, 2, 3, 1).shape[1:] == shape[1:]:
        calib = calib.transpose(0, 2, 3, 1)
    qt = quantizer.Quantizer(src)
    qt.load_quantization_recipe(recipe.static_wi8_ai8())
    result = qt.calibrate({key: [{name: x[None]} for x in calib]}, num_threads=1)
    q = qt.quantize(result)
    with open(out, "wb") as f:
        f.write(bytes(q.quantized_model))
    version = importlib.metadata.version("ai-edge-quantizer")
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 1), "signature": key, "input": name,
                      "calibration_inputs": len(calib), "tensors_named": renamed, "ai_edge_quantizer": version}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
