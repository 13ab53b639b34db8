// kiln's Python bindings (pybind11): the module `kiln._kiln`, re-exported by `kiln/__init__.py`.
//
// - BuildOptions, Builder, Plan, Engine, ExecutionContext, as the C++ API.
// - ExecutionContext.run() takes and returns NumPy arrays (copied in and out, like the C++ run()).
// - On a GPU plan, ExecutionContext.enqueue() runs on the caller's CUDA stream with the caller's
//   device buffers, zero-copy: inputs and outputs are objects with __cuda_array_interface__
//   (PyTorch and CuPy tensors have it) or (pointer, shape) pairs.
// - Errors are kiln.Error exceptions carrying the Status code name (`.code`).
// - The GIL is released while building, loading and running.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "kiln/kiln.h"

namespace py = pybind11;

namespace {

py::object g_error;  // kiln.Error

[[noreturn]] void raise(const kiln::Status& s) {
  py::object e = g_error(s.message());
  e.attr("code") = kiln::status_code_name(s.code());
  PyErr_SetObject(g_error.ptr(), e.ptr());
  throw py::error_already_set();
}

void check(const kiln::Status& s) {
  if (!s) raise(s);
}

// NumPy dtype <-> kiln DataType.
kiln::DataType dtype_of(const py::dtype& d) {
  const char kind = d.kind();
  const size_t size = d.itemsize();
  if (kind == 'f' && size == 4) return kiln::DataType::kFloat;
  if (kind == 'f' && size == 8) return kiln::DataType::kDouble;
  if (kind == 'f' && size == 2) return kiln::DataType::kFloat16;
  if (kind == 'b') return kiln::DataType::kBool;
  if (kind == 'i') {
    switch (size) {
      case 1: return kiln::DataType::kInt8;
      case 2: return kiln::DataType::kInt16;
      case 4: return kiln::DataType::kInt32;
      case 8: return kiln::DataType::kInt64;
    }
  }
  if (kind == 'u') {
    switch (size) {
      case 1: return kiln::DataType::kUInt8;
      case 2: return kiln::DataType::kUInt16;
      case 4: return kiln::DataType::kUInt32;
      case 8: return kiln::DataType::kUInt64;
    }
  }
  throw py::type_error("kiln: NumPy dtype " + py::str(py::handle(d)).cast<std::string>() + " has no kiln type");
}

py::dtype numpy_dtype(kiln::DataType t) {
  switch (t) {
    case kiln::DataType::kFloat: return py::dtype("float32");
    case kiln::DataType::kDouble: return py::dtype("float64");
    case kiln::DataType::kFloat16: return py::dtype("float16");
    case kiln::DataType::kBool: return py::dtype("bool");
    case kiln::DataType::kInt8: return py::dtype("int8");
    case kiln::DataType::kInt16: return py::dtype("int16");
    case kiln::DataType::kInt32: return py::dtype("int32");
    case kiln::DataType::kInt64: return py::dtype("int64");
    case kiln::DataType::kUInt8: return py::dtype("uint8");
    case kiln::DataType::kUInt16: return py::dtype("uint16");
    case kiln::DataType::kUInt32: return py::dtype("uint32");
    case kiln::DataType::kUInt64: return py::dtype("uint64");
    default:
      throw py::type_error(std::string("kiln: type ") + kiln::dtype_name(t) + " has no NumPy dtype");
  }
}

kiln::Tensor to_tensor(const py::array& a) {
  py::array c = py::array::ensure(a, py::array::c_style);
  kiln::Dims dims(c.shape(), c.shape() + c.ndim());
  kiln::Tensor t(dtype_of(c.dtype()), dims);
  if (t.nbytes()) std::memcpy(t.raw(), c.data(), t.nbytes());
  return t;
}

py::array to_numpy(const kiln::Tensor& t) {
  std::vector<py::ssize_t> shape(t.dims().begin(), t.dims().end());
  py::array a(numpy_dtype(t.dtype()), shape);
  if (t.nbytes()) std::memcpy(a.mutable_data(), t.raw(), t.nbytes());
  return a;
}

py::dict desc(const kiln::TensorDesc& d) {
  py::dict r;
  r["name"] = d.name;
  r["dtype"] = kiln::dtype_name(d.dtype);
  r["shape"] = d.dims;  // -1 for a dynamic dim
  r["dim_names"] = d.dim_names;
  return r;
}

py::list desc_list(const std::vector<kiln::TensorDesc>& ds) {
  py::list l;
  for (const auto& d : ds) l.append(desc(d));
  return l;
}

// A device buffer from the caller: __cuda_array_interface__ (PyTorch, CuPy) or (pointer, shape).
struct DeviceView {
  void* ptr = nullptr;
  kiln::Dims dims;
  std::string typestr;
};
DeviceView device_view(const py::handle& obj) {
  DeviceView v;
  if (py::hasattr(obj, "__cuda_array_interface__")) {
    py::dict cai = obj.attr("__cuda_array_interface__");
    py::tuple data = cai["data"];
    v.ptr = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
    for (auto d : cai["shape"]) v.dims.push_back(d.cast<int64_t>());
    v.typestr = cai["typestr"].cast<std::string>();
    if (cai.contains("strides") && !cai["strides"].is_none())
      throw py::value_error("kiln: enqueue() takes contiguous device tensors (call .contiguous())");
    return v;
  }
  if (py::isinstance<py::tuple>(obj) && py::len(obj) == 2) {
    py::tuple t = obj.cast<py::tuple>();
    v.ptr = reinterpret_cast<void*>(t[0].cast<uintptr_t>());
    for (auto d : t[1]) v.dims.push_back(d.cast<int64_t>());
    return v;
  }
  throw py::type_error(
      "kiln: enqueue() takes tensors with __cuda_array_interface__ (PyTorch, CuPy) or "
      "(device pointer, shape) tuples");
}

// The typestr a kiln type has in __cuda_array_interface__ ("<f4").
std::string typestr_of(kiln::DataType t) {
  return numpy_dtype(t).attr("str").cast<std::string>();
}

// A context with the engine it runs (kept alive as long as the context) and the engine's tensor
// types, which enqueue() checks the caller's device tensors against.
struct KilnContext {
  std::shared_ptr<kiln::Engine> engine;
  std::unique_ptr<kiln::ExecutionContext> ctx;
  std::map<std::string, kiln::DataType> types;
};

void check_typestr(const KilnContext& c, const std::string& name, const DeviceView& v) {
  auto it = c.types.find(name);
  if (it == c.types.end()) return;  // kiln reports the unknown name
  if (!v.typestr.empty() && v.typestr != typestr_of(it->second))
    throw py::type_error("kiln: '" + name + "' is " + kiln::dtype_name(it->second) +
                         " in the plan, but the tensor given has typestr " + v.typestr);
}

}  // namespace

PYBIND11_MODULE(_kiln, m) {
  m.doc() = "kiln: an inference optimizer and runtime for ONNX models";
  m.attr("__version__") = kiln::version();
  g_error = py::reinterpret_borrow<py::object>(
      PyErr_NewException("kiln.Error", PyExc_RuntimeError, nullptr));
  m.attr("Error") = g_error;

  py::class_<kiln::BuildOptions>(m, "BuildOptions")
      .def(py::init<>())
      .def_readwrite("device", &kiln::BuildOptions::device)
      .def_readwrite("opt_level", &kiln::BuildOptions::opt_level)
      .def_readwrite("timing_cache", &kiln::BuildOptions::timing_cache)
      .def_readwrite("max_workspace_mib", &kiln::BuildOptions::max_workspace_mib)
      .def_readwrite("fp16", &kiln::BuildOptions::fp16)
      .def_readwrite("tf32", &kiln::BuildOptions::tf32)
      .def_readwrite("int8", &kiln::BuildOptions::int8)
      .def_readwrite("calib_dir", &kiln::BuildOptions::calib_dir)
      .def_readwrite("calib_algo", &kiln::BuildOptions::calib_algo)
      .def_readwrite("calib_percentile", &kiln::BuildOptions::calib_percentile)
      .def_readwrite("calib_cache", &kiln::BuildOptions::calib_cache)
      .def_readwrite("layer_precisions", &kiln::BuildOptions::layer_precisions)
      .def_readwrite("precision_constraints", &kiln::BuildOptions::precision_constraints)
      .def_readwrite("excluded_tactics", &kiln::BuildOptions::excluded_tactics)
      .def_readwrite("input_shapes", &kiln::BuildOptions::input_shapes);

  py::class_<kiln::Plan, std::shared_ptr<kiln::Plan>>(m, "Plan")
      .def("save", [](const kiln::Plan& p, const std::string& path) { check(p.save(path)); })
      .def("serialize", [](const kiln::Plan& p) { return py::bytes(p.serialize()); })
      .def_static("load",
                  [](const std::string& path) {
                    std::shared_ptr<kiln::Plan> p;
                    kiln::Status s;
                    {
                      py::gil_scoped_release nogil;
                      s = kiln::Plan::load(path, p);
                    }
                    check(s);
                    return p;
                  })
      .def_static("deserialize",
                  [](py::bytes b) {
                    std::string bytes = b;
                    std::shared_ptr<kiln::Plan> p;
                    check(kiln::Plan::deserialize(bytes, p));
                    return p;
                  })
      .def_property_readonly("device", &kiln::Plan::device)
      .def_property_readonly("num_steps", &kiln::Plan::num_steps)
      .def_property_readonly("num_host_steps", &kiln::Plan::num_host_steps)
      .def_property_readonly("inputs",
                             [](const kiln::Plan& p) { return desc_list(p.inputs()); })
      .def_property_readonly("outputs",
                             [](const kiln::Plan& p) { return desc_list(p.outputs()); })
      .def("steps",
           [](const kiln::Plan& p) {
             py::list l;
             for (const auto& s : p.steps()) {
               py::dict d;
               d["index"] = s.index;
               d["name"] = s.name;
               d["op"] = s.op;
               d["tactic"] = s.tactic;
               d["precision"] = s.precision;
               d["layout"] = s.layout;
               d["on_host"] = s.on_host;
               l.append(d);
             }
             return l;
           })
      .def("__repr__", &kiln::Plan::describe);

  py::class_<kiln::Builder>(m, "Builder")
      .def(py::init<kiln::BuildOptions>(), py::arg("options") = kiln::BuildOptions())
      .def("build_from_onnx",
           [](const kiln::Builder& b, const std::string& path) {
             std::shared_ptr<kiln::Plan> p;
             kiln::Status s;
             {
               py::gil_scoped_release nogil;
               s = b.build_from_onnx(path, p);
             }
             check(s);
             return p;
           })
      .def("build_from_onnx_bytes", [](const kiln::Builder& b, py::bytes data) {
        std::string bytes = data;
        std::shared_ptr<kiln::Plan> p;
        kiln::Status s;
        {
          py::gil_scoped_release nogil;
          s = b.build_from_onnx_bytes(bytes, p);
        }
        check(s);
        return p;
      });

  py::class_<KilnContext>(m, "ExecutionContext")
      .def(
          "run",
          [](KilnContext& pc, const py::dict& inputs) {
            std::map<std::string, kiln::Tensor> in, out;
            for (auto [k, v] : inputs) in[k.cast<std::string>()] = to_tensor(py::array::ensure(v));
            kiln::Status s;
            {
              py::gil_scoped_release nogil;
              s = pc.ctx->run(in, out);
            }
            check(s);
            py::dict r;
            for (const auto& [k, t] : out) r[py::str(k)] = to_numpy(t);
            return r;
          },
          py::arg("inputs"),
          "Runs synchronously: a dict of NumPy arrays in, a dict of NumPy arrays out.")
      .def(
          "enqueue",
          [](KilnContext& pc, const py::dict& inputs, const py::dict& outputs,
             uintptr_t stream) {
            for (auto [k, v] : inputs) {
              const std::string name = k.cast<std::string>();
              DeviceView d = device_view(v);
              check_typestr(pc, name, d);
              check(pc.ctx->set_input_shape(name, d.dims));
              check(pc.ctx->set_tensor_address(name, d.ptr));
            }
            for (auto [k, v] : outputs) {
              const std::string name = k.cast<std::string>();
              DeviceView d = device_view(v);
              check_typestr(pc, name, d);
              kiln::Dims want;
              check(pc.ctx->output_dims(name, want));
              if (d.dims != want)
                throw py::value_error("kiln: output '" + name + "' needs shape " +
                                      kiln::dims_to_string(want) + ", the tensor given is " +
                                      kiln::dims_to_string(d.dims));
              check(pc.ctx->set_tensor_address(name, d.ptr));
            }
            kiln::Status s;
            {
              py::gil_scoped_release nogil;
              s = pc.ctx->enqueue(reinterpret_cast<void*>(stream));
            }
            check(s);
          },
          py::arg("inputs"), py::arg("outputs"), py::arg("stream") = 0,
          "GPU plans: runs on the caller's CUDA stream (an int: torch.cuda.current_stream()."
          "cuda_stream), reading and writing the caller's device tensors in place (zero-copy). "
          "Tensors: objects with __cuda_array_interface__ (PyTorch, CuPy) or (pointer, shape).")
      .def(
          "output_shape",
          [](KilnContext& pc, const std::string& name) {
            kiln::Dims d;
            check(pc.ctx->output_dims(name, d));
            return std::vector<int64_t>(d.begin(), d.end());
          },
          "An output's shape for the input shapes set so far (enqueue's inputs).")
      .def("set_input_shape",
           [](KilnContext& pc, const std::string& name, std::vector<int64_t> dims) {
             check(pc.ctx->set_input_shape(name, kiln::Dims(dims.begin(), dims.end())));
           })
      .def("set_optimization_profile",
           [](KilnContext& pc, size_t i) { check(pc.ctx->set_optimization_profile(i)); });

  py::class_<kiln::Engine, std::shared_ptr<kiln::Engine>>(m, "Engine")
      .def(py::init([](std::shared_ptr<kiln::Plan> plan) {
             std::shared_ptr<kiln::Engine> e;
             kiln::Status s;
             {
               py::gil_scoped_release nogil;
               s = kiln::Engine::create(plan, e);
             }
             check(s);
             return e;
           }),
           py::arg("plan"))
      .def_property_readonly("device", &kiln::Engine::device)
      .def("create_context",
           [](std::shared_ptr<kiln::Engine> e) {
             auto pc = std::make_unique<KilnContext>();
             pc->engine = e;
             check(e->create_context(pc->ctx));
             for (const auto& d : e->inputs()) pc->types[d.name] = d.dtype;
             for (const auto& d : e->outputs()) pc->types[d.name] = d.dtype;
             return pc;
           })
      .def_property_readonly("inputs", [](const kiln::Engine& e) { return desc_list(e.inputs()); })
      .def_property_readonly("outputs", [](const kiln::Engine& e) { return desc_list(e.outputs()); });

  m.def(
      "load_plugin_library", [](const std::string& path) { check(kiln::load_plugin_library(path)); },
      py::arg("path"),
      "Loads a plugin library (kiln/plugin.h) so that models and plans may use its plugins.");
  m.def("dtype_typestr", [](const std::string& name) {
    for (int i = 1; i <= 13; ++i)
      if (name == kiln::dtype_name(static_cast<kiln::DataType>(i)))
        return typestr_of(static_cast<kiln::DataType>(i));
    throw py::value_error("kiln: unknown type " + name);
  });
}
