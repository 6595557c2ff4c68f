"""synthscape.core: conditions, networks, GAN and VAE training, sampling and artifacts.

This package's ``__init__`` imports nothing that needs torch, so the torch-free modules
(``conditions``, ``config``, ``sampling``, ``grids``, ``fileio``, ``errors``) serve the edge
install too. Import the torch modules (``networks``, ``training``, ``artifacts``) by name.
"""

from synthscape.core.conditions import ConditionPrior, ConditionSchema
from synthscape.core.errors import SynthscapeError

__all__ = ["ConditionPrior", "ConditionSchema", "SynthscapeError"]
