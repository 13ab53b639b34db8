"""pytest tests of kiln's Python package (run by the ctest python_tests; the GPU ones skip, and
say so, without a GPU)."""
import os

import numpy as np
import pytest

import kiln

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "fashion_cnn.onnx")
SAMPLES = np.load(os.path.join(ROOT, "models", "fashion_cnn.sample_input.npy"))
LOGITS = np.load(os.path.join(ROOT, "models", "fashion_cnn.sample_logits.npy"))


def cpu_plan(batch=8):
    return kiln.build(MODEL, device="cpu", input_shapes={"image": [batch, 1, 28, 28]})


def test_build_run_matches_pytorch():
    plan = cpu_plan()
    assert plan.device == "cpu" and plan.num_steps > 0
    assert plan.inputs[0]["name"] == "image" and plan.inputs[0]["shape"] == [8, 1, 28, 28]
    out = kiln.Engine(plan).create_context().run({"image": SAMPLES})
    assert set(out) == {"logits"}
    y = out["logits"]
    assert y.dtype == np.float32 and y.shape == (8, 10)
    np.testing.assert_allclose(y, LOGITS, rtol=1e-4, atol=1e-4)


def test_plan_round_trip_through_a_file_and_bytes(tmp_path):
    plan = cpu_plan()
    path = str(tmp_path / "cnn.plan")
    plan.save(path)
    again = kiln.Plan.load(path)
    from_bytes = kiln.Plan.deserialize(plan.serialize())
    for p in (again, from_bytes):
        y = kiln.Engine(p).create_context().run({"image": SAMPLES})["logits"]
        np.testing.assert_allclose(y, LOGITS, rtol=1e-4, atol=1e-4)
    steps = again.steps()
    assert len(steps) == again.num_steps and all("tactic" in s for s in steps)


def test_errors_are_kiln_errors_with_a_code():
    ctx = kiln.Engine(cpu_plan()).create_context()
    with pytest.raises(kiln.Error) as e:
        ctx.run({"image": np.zeros((3, 1, 28, 28), np.float32)})
    assert "expects [8,1,28,28]" in str(e.value) and e.value.code == "invalid argument"
    with pytest.raises(kiln.Error):
        ctx.run({"image": np.zeros((8, 1, 28, 28), np.float64)})
    with pytest.raises(kiln.Error) as e:
        kiln.build(os.path.join(ROOT, "no", "such.onnx"), device="cpu")
    assert "such.onnx" in str(e.value)
    with pytest.raises(TypeError):
        kiln.build(MODEL, device="cpu", no_such_option=1)


def test_build_from_bytes_and_options():
    with open(MODEL, "rb") as f:
        data = f.read()
    plan = kiln.build(data, device="cpu", input_shapes={"image": [2, 1, 28, 28]}, opt_level=0)
    y = kiln.Engine(plan).create_context().run({"image": SAMPLES[:2]})["logits"]
    np.testing.assert_allclose(y, LOGITS[:2], rtol=1e-4, atol=1e-4)


def test_int8_from_python(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    np.save(calib / "batch0.npy", SAMPLES)
    plan = kiln.build(MODEL, device="cpu", int8=True, calib_dir=str(calib),
                      input_shapes={"image": [8, 1, 28, 28]})
    assert any(s["precision"].startswith("int8") for s in plan.steps())
    y = kiln.Engine(plan).create_context().run({"image": SAMPLES})["logits"]
    assert (y.argmax(1) == LOGITS.argmax(1)).all()


def test_gpu_enqueue_with_torch_tensors_zero_copy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no GPU on this machine")
    plan = kiln.build(MODEL, device="cuda", input_shapes={"image": [8, 1, 28, 28]})
    ctx = kiln.Engine(plan).create_context()
    x = torch.from_numpy(SAMPLES).cuda()
    y = torch.empty((8, 10), device="cuda")
    stream = torch.cuda.current_stream()
    ctx.enqueue({"image": x}, {"logits": y}, stream.cuda_stream)
    stream.synchronize()
    np.testing.assert_allclose(y.cpu().numpy(), LOGITS, rtol=1e-3, atol=1e-3)


def test_plugin_library_and_model():
    lib = os.environ.get("KILN_EXAMPLE_PLUGINS")
    if not lib:
        pytest.skip("KILN_EXAMPLE_PLUGINS is not set (the ctest python_tests sets it)")
    with pytest.raises(kiln.Error):
        kiln.load_plugin_library("/nonexistent/libnope.so")
    kiln.load_plugin_library(lib)
    data = os.path.join(ROOT, "tests", "data")
    plan = kiln.build(os.path.join(data, "plugin_detect.onnx"), device="cpu")
    x = np.load(os.path.join(data, "plugin_detect_input.npy"))
    out = kiln.Engine(plan).create_context().run({"head": x})
    np.testing.assert_array_equal(out["det_classes"], np.load(os.path.join(data, "plugin_detect_det_classes.npy")))
    np.testing.assert_allclose(out["det_boxes"], np.load(os.path.join(data, "plugin_detect_det_boxes.npy")),
                               rtol=1e-5, atol=1e-4)
