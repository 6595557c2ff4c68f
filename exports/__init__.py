"""synthscape.exports: ONNX export, verification, quantization and the torch-free runtime.

``runtime`` imports numpy and onnxruntime only, never torch.
"""
