"Diagnosis on BUSI: normal, benign or malignant, from the segmented lesion's radiomics, the network's features, or both."
