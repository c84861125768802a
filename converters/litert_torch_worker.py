"""Worker for the litert-torch backend, run in its own Python environment.

litert-torch pins numpy 2 and a newer ai-edge-litert, which conflict with
tensorflow 2.19 (the onnx2tf stack), so it cannot share devicekit's venv.
devicekit saves the model as a ``torch.export`` program plus the calibration
inputs, and runs this file with that environment's Python:

    python litert_torch_worker.py MODEL.pt2 CALIB.npy OUT.tflite fp32|int8

int8 is PT2E static quantisation (symmetric, per-channel weights) calibrated
on the same inputs; ops the PT2E quantiser does not annotate (exp, sum,
div: the soft-argmax tail) stay in float, which matches the keep-float-tail
policy. The input is NHWC (``to_channel_last_io``) like the onnx2tf path.
Only this script imports litert_torch; it prints one JSON line.
"""

import json
import sys
import time


def main(pt2: str, calib_npy: str, out: str, precision: str) -> None:
    import litert_torch
    import numpy as np
    import torch

    t0 = time.perf_counter()
    calib = np.load(calib_npy).astype(np.float32)
    args = (torch.from_numpy(calib[:1]),)
    module = torch.export.load(pt2).module()
    if precision == "int8":
        from litert_torch.quantize import pt2e_quantizer, quant_config
        from torchao.quantization.pt2e import quantize_pt2e

        quantizer = pt2e_quantizer.PT2EQuantizer().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
        module = torch.export.export(module, args).module()
        module = quantize_pt2e.prepare_pt2e(module, quantizer)
        with torch.no_grad():
            for x in calib:
                module(torch.from_numpy(x[None]))
        module = quantize_pt2e.convert_pt2e(module, fold_quantize=False)
        qc = quant_config.QuantConfig(pt2e_quantizer=quantizer)
    else:
        qc = None
    nhwc = litert_torch.to_channel_last_io(module, args=[0])
    args_nhwc = (args[0].permute(0, 2, 3, 1).contiguous(),)
    edge = litert_torch.convert(nhwc, args_nhwc, quant_config=qc)
    edge.export(out)
    print(json.dumps({"ok": True, "seconds": time.perf_counter() - t0, "litert_torch": litert_torch.__version__}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
