"""The models livecomp ships: one folder per model (model.json + ONNX graphs), found by name."""
