"Applying a trained model: one Predictor over torch/ONNX/int8 backends, lesion reports, images, video and DICOM, model folders."

def __getattr__(name:str):
    "`from radiomicnet.infer import Predictor`: the Predictor with its model folders (`Predictor.from_pretrained`, notebook 14), imported on first use."
    if name == "Predictor":
        from .pretrained import Predictor
        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
