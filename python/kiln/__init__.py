"""kiln: an inference optimizer and runtime for ONNX models.

    import kiln, numpy as np
    plan = kiln.Builder(kiln.BuildOptions()).build_from_onnx("models/fashion_cnn.onnx")
    ctx = kiln.Engine(plan).create_context()
    logits = ctx.run({"image": np.zeros((1, 1, 28, 28), np.float32)})["logits"]

Errors are raised as kiln.Error, whose `code` names the kind ("kInvalidArgument", ...).
"""
from ._kiln import (BuildOptions, Builder, Engine, Error, ExecutionContext, Plan,  # noqa: F401
                    __version__, load_plugin_library)


def build(model, device="", fp16=False, int8=False, input_shapes=None, **options):
    """Builds a plan from an ONNX file (a path) or ONNX bytes, with BuildOptions fields as
    keyword arguments."""
    o = BuildOptions()
    o.device = device
    o.fp16 = fp16
    o.int8 = int8
    if input_shapes:
        o.input_shapes = {k: list(v) for k, v in input_shapes.items()}
    for k, v in options.items():
        if not hasattr(o, k):
            raise TypeError(f"kiln.build: unknown option {k!r}")
        setattr(o, k, v)
    b = Builder(o)
    if isinstance(model, (bytes, bytearray)):
        return b.build_from_onnx_bytes(bytes(model))
    return b.build_from_onnx(str(model))
