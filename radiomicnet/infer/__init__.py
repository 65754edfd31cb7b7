"Applying a trained model: one Predictor over torch/ONNX/int8 backends, lesion reports, images, video and DICOM, model folders."
