"""A seeded mutation harness for model files (issue 17).

Real .tflite, .onnx and .mlpackage files are mutated deterministically (``mutate.py``: bit and byte flips,
truncations, chunk overwrites, and structure-aware edits of indices, lengths, shapes and enums), each mutant
is judged by the runtime's own verdict in a child process (``oracle.py``: LiteRT for .tflite, the onnx checker
and onnxruntime for .onnx, coremltools' MIL loader for .mlpackage), and ``devicekit check``, ``verify`` and
``bench`` are run on it with timeouts (``run.py``). ``test_fuzz_quick.py`` is the quick tier of the default
suite; ``benchmarks/fuzz.py`` runs the full tier and writes benchmarks/fuzz.md.
"""
