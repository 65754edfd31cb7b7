"Pixels and labels: DICOM input, the two datasets and their committed splits, fastai loaders with cached radiomics, and near-duplicates."
