"""The networks, written once for 2D and 3D: blocks (FiLM GroupNorm, up/down blocks), the
conditional generator (GAN generator and VAE decoder), critic and encoder; their weights in
safetensors; a trained generator on disk (config.json + generator.safetensors) and its torch sampler.

Imports: ``core`` (errors), ``core.schema``, ``core.sampling``, ``core.files``; torch and MONAI.
"""
