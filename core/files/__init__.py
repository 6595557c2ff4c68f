"""Writing files that are whole or absent: atomic paths and folders, leftovers of a killed
process, new output folders, and the PNG pictures (grids, CT planes) people look at.

Imports: ``core`` (errors). numpy, OpenCV and the standard library; no torch.
"""
