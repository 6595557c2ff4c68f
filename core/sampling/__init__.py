"""Drawing samples by (seed, index), for any backend: the ``Sampler`` base, per-sample random
streams, orders of several conditions (``--plan``) and shards (``--shard``, torchrun ranks).

Imports: ``core`` (errors, progress), ``core.schema``. numpy only; no torch, so the edge install
(onnxruntime) samples through exactly this code.
"""
