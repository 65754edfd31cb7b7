"""RadiomicNet: radiomics-guided lightweight, interpretable medical image segmentation (a literate re-implementation of arXiv 2607.02185)

Modules:

- `radiomicnet.diagnosis.net`: Segment, measure, predict: normal, benign or malignant on BUSI, from radiomics of the segmented lesion (classical pipeline), from the network's own features, and from both through a learned gate, with a hierarchical two-task loss and homoscedastic-uncertainty weighting (issue 21)."""

__version__ = "0.1.0"

# fastai's `layers` module calls the deprecated `torch.jit.script` at import time; every command of ours imports
# fastai, so without this filter each one would start with torch's FutureWarning. Only that one warning is hidden.
import warnings as _warnings
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# Nothing heavy is imported here: `radiomicnet-predict --help` answers without torch, and the model registry (notebook 03)
# imports the baselines and the diagnosis network the first time one of them is asked for (`LAZY_MODELS`).
