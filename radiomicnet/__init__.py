"""RadiomicNet: radiomics-guided lightweight, interpretable medical image segmentation (a literate re-implementation of arXiv 2607.02185)

Modules:

- `radiomicnet.diagnosis.classical`: Segment, measure, predict, with nothing learned end to end: the largest predicted lesion's descriptors (notebook 19's report) classified by scikit-learn models chosen by cross-validation on the training split, on predicted masks and on the ground-truth ones.
- `radiomicnet.diagnosis.net`: Normal, benign or malignant on BUSI from the network's own features, from radiomics, and from both through a learned gate: a classification branch on RadiomicNet's encoder, trained jointly with the segmentation under a hierarchical two-task loss and homoscedastic-uncertainty weighting (issue 21).
- `radiomicnet.diagnosis.results`: The diagnosis tables, figures and words of a results folder, rebuilt from its prediction and run files alone: the test sets, the provenance of every run, selection on validation, the seed ensemble, paired comparisons, and the verdict in words.
- `radiomicnet.eval.evaluate`: Score a trained model: one split of its data set, or any folder of images, loaded as the network sees it, predicted, scored at each image's native resolution with notebook 15's scores and written as tables and figures; the temperature of a checkpoint, labelled folders, and an external test (paper §IV-B, §IV-G).
- `radiomicnet.eval.scores`: Per-image segmentation metrics, their summary with a bootstrap CI, the paired Wilcoxon test, pixel-level calibration (ECE, reliability diagram, temperature scaling), HD95 and the qualitative error grid (paper §IV-B, §IV-G): functions of probabilities and masks alone."""

__version__ = "0.1.0"

# fastai's `layers` module calls the deprecated `torch.jit.script` at import time; every command of ours imports
# fastai, so without this filter each one would start with torch's FutureWarning. Only that one warning is hidden.
import warnings as _warnings
_warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# Nothing heavy is imported here: `radiomicnet-predict --help` answers without torch, and the model registry (notebook 03)
# imports the baselines and the diagnosis network the first time one of them is asked for (`LAZY_MODELS`).
