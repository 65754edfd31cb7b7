__version__ = "0.1.0"

# fastai's `layers` module calls the deprecated `torch.jit.script` at import time; every command of ours imports
# fastai, so without this filter each one would start with torch's FutureWarning. Only that one warning is hidden.
import warnings as _warnings
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
