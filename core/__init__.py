"""synthscape.core: what every domain shares, grouped by concept (docs/architecture.md).

    schema/      condition schema and prior, network/train/artifact config        torch-free
    sampling/    Sampler, per-sample streams, orders, shards                      torch-free
    files/       atomic files and folders, PNG grids                              torch-free
    networks/    2D/3D blocks and networks, weights, a trained generator on disk  torch
    training/    the loop, GAN and VAE objectives, checkpoints, torchrun, DP-SGD   torch
    evaluation/  metrics beside real-vs-real references, the HTML report           torch (report: not)

The modules at this level (``errors``, ``allocator``, ``progress``) are leaves every package may
use. This ``__init__`` imports nothing, so importing any torch-free package pulls in no torch; the
public names live on ``synthscape`` itself (``synthscape.ConditionSchema``, ``synthscape.load``).
"""
