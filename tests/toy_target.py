"""A toy conversion target for tests/test_registry.py: the model's ONNX graph itself.

Importing this module is the whole of adding it: one ``registry.register_target``.
"""

from __future__ import annotations

from devicekit import registry


def convert_to_onnx(model, opts, calib):
    import onnx

    from devicekit.converters.base import ConversionResult, base_manifest
    from devicekit.converters.onnx_export import export_onnx
    from devicekit.manifest import TensorInfo, finalize

    target = registry.TARGETS["toy-onnx"]
    path = export_onnx(model, opts.out_dir / f"{model.name}.toy-onnx.onnx")
    graph = onnx.load(str(path)).graph

    def info(v):
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
        return TensorInfo(v.name, dims, "float32", "NCHW" if len(dims) == 4 else None)

    manifest = base_manifest(model, target, [info(v) for v in graph.input], [info(v) for v in graph.output],
                             {"mode": "fp32"}, ("onnxruntime",))
    finalize(manifest, path)
    return ConversionResult(target.name, path, manifest, summary={"size_bytes": path.stat().st_size})


registry.register_target(registry.Target("toy-onnx", "onnx", "onnx", "fp32", False, "the ONNX graph itself (a test's toy)",
                                         run=convert_to_onnx))
