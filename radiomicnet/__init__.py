__version__ = "0.1.0"

# fastai's `layers` module calls the deprecated `torch.jit.script` at import time; every command of ours imports
# fastai, so without this filter each one would start with torch's FutureWarning. Only that one warning is hidden.
import warnings as _warnings
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# The model registry (notebook 02) knows no baseline; the baselines (notebook 08) register themselves when imported.
# Importing them here, with the package, keeps every import pointing forward along the notebook order.
from . import baselines as _baselines  # noqa: E402,F401
