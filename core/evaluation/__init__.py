"""Judging generated data against real data: label fidelity, distances, diversity, utility and
memorisation, each beside its real-vs-real reference (``suite.evaluate``), and the self-contained
HTML report that renders them.

The renderer (``report``, ``svg_plots``) depends on the metrics' rows (``verdicts``), never the
reverse, and imports no torch.

Imports: ``core`` (errors), ``core.schema``, ``core.sampling``, ``core.files``, ``core.networks``;
torch and MONAI (the metrics only).
"""
