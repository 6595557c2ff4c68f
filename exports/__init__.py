"""Exported generators: ONNX export (torch) and the torch-free onnxruntime sampler."""
