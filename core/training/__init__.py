"""Training a conditional GAN or VAE: the one loop (``loop.train``), the objectives (GAN, VAE),
checkpoints, data order, torchrun process groups, metrics.csv and DP-SGD.

Imports: ``core`` (errors, allocator, progress), ``core.schema``, ``core.sampling``, ``core.files``,
``core.networks``; torch, MONAI, Opacus (DP only).
"""
