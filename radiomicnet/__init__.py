"""RadiomicNet: radiomics-guided lightweight, interpretable medical image segmentation (a literate re-implementation of arXiv 2607.02185)

Modules:

- `radiomicnet.diagnose`: Segment, measure, predict: normal, benign or malignant on BUSI, from radiomics of the segmented lesion (classical pipeline), from the network's own features, and from both through a learned gate, with a hierarchical two-task loss and homoscedastic-uncertainty weighting (issue 21)."""

__version__ = "0.1.0"

# fastai's `layers` module calls the deprecated `torch.jit.script` at import time; every command of ours imports
# fastai, so without this filter each one would start with torch's FutureWarning. Only that one warning is hidden.
import warnings as _warnings
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# The model registry (notebook 02) knows no baseline; the baselines (notebook 08) register themselves when imported.
# Importing them here, with the package, keeps every import pointing forward along the notebook order.
from . import baselines as _baselines  # noqa: E402,F401
# The diagnosis network (notebook 07ab) registers itself the same way, so its checkpoints load by name everywhere.
from . import diagnose as _diagnose  # noqa: E402,F401
