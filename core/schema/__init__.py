"""What a generator is, without torch: its condition schema and prior, its network, training and
artifact config (config.json). The contract every other part of synthscape reads.

Imports: ``core`` (errors) only. numpy and the standard library; no torch.
"""
