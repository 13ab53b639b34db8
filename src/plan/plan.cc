#include <cstring>
#include <sstream>

#include "common/api_guard.h"
#include "common/file.h"
#include "plan/plan_data.h"
#include "runtime/engine_impl.h"

namespace kiln {

std::string TensorDesc::str() const {
  std::string s = name + ": " + dtype_name(dtype) + "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += dims[i] >= 0 ? std::to_string(dims[i]) : (i < dim_names.size() ? dim_names[i] : "?");
  }
  return s + "]";
}

Plan::Plan(std::unique_ptr<PlanData> d) : data_(std::move(d)) {}
Plan::~Plan() = default;

std::shared_ptr<Plan> PlanAccess::make(std::unique_ptr<PlanData> d) {
  return std::shared_ptr<Plan>(new Plan(std::move(d)));
}

std::string Plan::serialize() const { return serialize_plan(*data_); }

Status Plan::save(const std::string& path) const {
  return guard([&] { write_file(path, serialize_plan(*data_)); });
}

Status Plan::load(const std::string& path, std::shared_ptr<Plan>& out) {
  return guard([&] {
    auto f = MappedFile::open(path);
    try {
      out = PlanAccess::make(deserialize_plan(f->data(), f->size(), f));
    } catch (const Error& e) {
      throw Error(e.code(), "'" + path + "': " + e.message());
    }
  });
}

Status Plan::deserialize(std::string_view bytes, std::shared_ptr<Plan>& out) {
  return guard([&] {
    // Copy into 64-byte aligned storage so that weights can be borrowed in place.
    Tensor buf(DataType::kUInt8, {static_cast<int64_t>(bytes.size())});
    std::memcpy(buf.raw(), bytes.data(), bytes.size());
    auto keep = std::make_shared<Tensor>(buf);
    out = PlanAccess::make(deserialize_plan(buf.data<uint8_t>(), bytes.size(), keep));
  });
}

std::vector<TensorDesc> Plan::inputs() const { return describe_values(data_->graph->inputs); }
std::vector<TensorDesc> Plan::outputs() const { return describe_values(data_->graph->outputs); }
std::string Plan::device() const { return data_->info.device; }
size_t Plan::num_steps() const { return data_->steps.size(); }

std::string Plan::describe() const {
  std::ostringstream os;
  const BuildInfo& b = data_->info;
  os << "kiln plan: built by kiln " << b.kiln_version << " for " << b.device;
  if (!b.gpu_name.empty())
    os << " (" << b.gpu_name << ", compute capability " << b.compute_capability << ", CUDA "
       << b.cuda_version << ", cuDNN " << b.cudnn_version << ", cuBLASLt " << b.cublaslt_version
       << ")";
  for (const auto& [k, v] : b.extra) os << ", " << k << " " << v;
  os << "\n";
  for (const auto& d : inputs()) os << "  input  " << d.str() << "\n";
  for (const auto& d : outputs()) os << "  output " << d.str() << "\n";
  size_t weights = 0, wbytes = 0;
  for (auto& v : data_->graph->values())
    if (v->is_constant()) { ++weights; wbytes += v->data.nbytes(); }
  os << "  " << data_->steps.size() << " steps, " << weights << " constant tensors ("
     << wbytes << " bytes)\n";
  for (const auto& s : data_->steps) {
    const Node& n = *data_->graph->nodes()[s.node];
    os << "  [" << s.node << "] " << n.op() << " '" << n.name << "' -> " << s.tactic << "\n";
  }
  return os.str();
}

}  // namespace kiln
