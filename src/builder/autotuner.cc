#include "builder/autotuner.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/log.h"

namespace kiln {

namespace {

// Random data for a timed run (never zeros: some kernels are faster on zeros than on real data);
// integers stay small, as indices and counts usually are. Large tensors repeat a random block of
// kPattern elements: timing needs realistic values, not independent ones, and drawing hundreds
// of millions of numbers per step would cost more than timing it.
Tensor random_tensor(DataType t, const Dims& dims, std::mt19937_64& rng) {
  constexpr int64_t kPattern = 1 << 16;
  Tensor x(t, dims);
  const int64_t n = x.numel(), drawn = std::min(n, kPattern);
  if (dtype_is_float(t)) {
    std::uniform_real_distribution<double> u(-1, 1);
    for (int64_t i = 0; i < drawn; ++i) x.set_f64(i, u(rng));
  } else {
    std::uniform_int_distribution<int64_t> u(0, 3);
    for (int64_t i = 0; i < drawn; ++i) x.set_i64(i, u(rng));
  }
  const size_t block = static_cast<size_t>(drawn) * dtype_size(t);
  char* base = static_cast<char*>(x.raw());
  for (size_t off = block, total = x.nbytes(); block > 0 && off < total; off += block)
    std::memcpy(base + off, base, std::min(block, total - off));
  return x;
}

// The processor a host backend's timings belong to (/proc/cpuinfo's model name, where there is
// one): a cache made on another machine times other caches and cores.
std::string host_cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown processor";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void check_concrete(const Node& n) {
  for (const Value* v : n.inputs)
    KILN_EXPECT(!v || v->shape.fully_known(), StatusCode::kInternal, "autotuner: ", n.label(),
                " input '", v->name, "' has shape ", v->shape.str());
  for (const Value* v : n.outputs)
    KILN_EXPECT(v->shape.fully_known(), StatusCode::kInternal, "autotuner: ", n.label(),
                " output '", v->name, "' has shape ", v->shape.str());
}

}  // namespace

// A node's timing buffers, made on its first timed candidate and kept for the others: host
// tensors (host backends), or device copies (device backends; freed by the destructor).
struct Autotuner::Inputs {
  const DeviceApi* dev = nullptr;
  bool made = false;
  std::vector<Tensor> host_in, host_out;
  std::vector<DeviceTensor> dev_in, dev_out;
  std::vector<void*> owned;
  ~Inputs() {
    for (void* p : owned) dev->free(p);
  }
};

Autotuner::Autotuner(const Backend& backend, TimingCache* cache, TacticLimits limits, int warmup,
                     int repeats)
    : backend_(backend), cache_(cache), limits_(limits), warmup_(std::max(0, warmup)),
      repeats_(std::max(1, repeats)) {}

Autotuner::~Autotuner() {
  const DeviceApi* d = backend_.device();
  if (!d) return;
  try {
    if (stream_) d->synchronize(stream_);
  } catch (const Error&) {
  }
  resources_.reset();
  for (void* e : events_) d->destroy_event(e);
  d->destroy_stream(stream_);
}

std::string Autotuner::device_identity(const Backend& backend) {
  const DeviceApi* d = backend.device();
  if (!d) return cat(backend.name(), " | ", host_cpu_model(), " | kiln ", KILN_VERSION);
  DeviceInfo i = d->info();
  return cat(backend.name(), " | ", i.gpu_name, " | cc ", i.compute_capability, " | CUDA ",
             i.cuda_version, " | cuDNN ", i.cudnn_version, " | cuBLASLt ", i.cublaslt_version,
             " | kiln ", KILN_VERSION);
}

std::string Autotuner::signature(const Tactic& tactic, const Node& node) {
  std::string s = cat(tactic.id(), "|", node.op(), "|", node.attrs ? node.attrs->structure() : "", "|in");
  for (const Value* v : node.inputs) {
    if (!v) {
      s += "|-";
      continue;
    }
    s += cat("|", dtype_name(v->dtype), v->shape.str(), v->is_constant() ? "c" : "");
  }
  s += "|out";
  for (const Value* v : node.outputs) s += cat("|", dtype_name(v->dtype), v->shape.str());
  return s;
}

TuneResult Autotuner::tune(const Tactic& tactic, const Node& node, bool time_default) {
  TuneResult r;
  // The workspace bound is part of the key: it decides which candidates exist.
  const std::string key = timing_key(cat(signature(tactic, node), "|workspace ", limits_.max_workspace));
  // A cache entry answers without asking the tactic for its candidates: enumerating them costs
  // library queries (cuDNN's graph-API plans are finalized to be listed), which made a build with
  // a warm cache take 4 s on ResNet-50. The cache belongs to this device and these library
  // versions (its header says so), and a tactic checks the choice when it prepares the step.
  if (cache_) {
    if (const TimingEntry* e = cache_->find(key)) {
      ++(tuned_here_.count(key) ? reused_ : hits_);
      r.choice = e->choice;
      r.ms = e->ms;
      r.cached = true;
      return r;
    }
  }
  std::vector<std::string> cands = tactic.candidates(node, limits_);
  if (cands.empty() && time_default) cands = {""};
  if (cands.empty()) return r;
  check_concrete(node);
  Inputs io;
  io.dev = backend_.device();
  double best = 0;
  std::string failures;
  for (const std::string& c : cands) {
    double ms = 0;
    try {
      ms = time_candidate(tactic, node, c, io);
    } catch (const Error& e) {
      failures += cat("\n  ", c, ": ", e.message());
      log(LogLevel::kInfo, "autotuner: ", node.label(), ": ", tactic.id(), " candidate '", c,
          "' failed: ", e.message());
      continue;
    }
    ++r.timed;
    ++timed_;
    log(LogLevel::kVerbose, "autotuner: ", node.label(), ": ", tactic.id(), " '", c, "' ", ms,
        " ms");
    // Ties keep the earlier candidate (the tactic lists its heuristic's choice first).
    if (r.timed == 1 || ms < best) {
      best = ms;
      r.choice = c;
    }
  }
  KILN_EXPECT(r.timed > 0, StatusCode::kUnsupported, "every candidate of ", tactic.id(),
              " failed for ", node.label(), ":", failures);
  r.ms = best;
  if (cache_) {
    cache_->put(key, {r.choice, r.ms, r.timed});
    tuned_here_.insert(key);
  }
  return r;
}

double Autotuner::time_candidate(const Tactic& tactic, const Node& node, const std::string& choice,
                                 Inputs& io) {
  std::string state = tactic.prepare_choice(node, choice, limits_);
  std::unique_ptr<Kernel> kernel = tactic.instantiate(node, state);
  return backend_.device() ? time_on_device(node, *kernel, io) : time_on_host(node, *kernel, io);
}

double Autotuner::time_on_host(const Node& node, Kernel& kernel, Inputs& io) {
  if (!io.made) {
    std::mt19937_64 rng(1);
    io.host_in.resize(node.inputs.size());
    io.host_out.resize(node.outputs.size());
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const Value* v = node.inputs[i];
      if (!v) continue;
      io.host_in[i] = v->is_constant() ? v->data : random_tensor(v->dtype, v->shape.concrete(), rng);
    }
    for (size_t k = 0; k < node.outputs.size(); ++k)
      io.host_out[k] = Tensor(node.outputs[k]->dtype, node.outputs[k]->shape.concrete());
    io.made = true;
  }
  ComputeArgs args{node, io.host_in, io.host_out};
  for (int i = 0; i < warmup_; ++i) kernel.run(args);
  std::vector<double> ms;
  for (int i = 0; i < repeats_; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    kernel.run(args);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  return median(ms);
}

double Autotuner::time_on_device(const Node& node, Kernel& kernel, Inputs& io) {
  const DeviceApi& dev = *backend_.device();
  if (!stream_) {
    stream_ = dev.create_stream();
    events_[0] = dev.create_event();
    events_[1] = dev.create_event();
    resources_ = dev.create_resources();
  }
  if (!io.made) {
    std::mt19937_64 rng(1);
    io.dev_in.assign(node.inputs.size(), DeviceTensor{});
    io.dev_out.assign(node.outputs.size(), DeviceTensor{});
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const Value* v = node.inputs[i];
      if (!v) continue;
      Tensor h = v->is_constant() ? v->data : random_tensor(v->dtype, v->shape.concrete(), rng);
      io.dev_in[i] = {dev.alloc(h.nbytes()), v->dtype, h.dims()};
      io.owned.push_back(io.dev_in[i].data);
      dev.copy_to_device(io.dev_in[i].data, h.raw(), h.nbytes(), stream_);
      dev.synchronize(stream_);  // h goes out of scope
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const Value* v = node.outputs[k];
      io.dev_out[k] = {nullptr, v->dtype, v->shape.concrete()};
      io.dev_out[k].data = dev.alloc(io.dev_out[k].nbytes());
      io.owned.push_back(io.dev_out[k].data);
    }
    io.made = true;
  }
  // The candidate's workspace is its own: freed on every path out, errors included.
  void* ws = nullptr;
  auto release = [&] {
    try {
      dev.synchronize(stream_);
    } catch (const Error&) {
    }
    dev.free(ws);
    ws = nullptr;
  };
  try {
    // The shape query sees no pointers, as the runtime's planning does.
    std::vector<DeviceTensor> si = io.dev_in, so = io.dev_out;
    for (auto& t : si) t.data = nullptr;
    for (auto& t : so) t.data = nullptr;
    LaunchArgs query{node, si, so};
    query.resources = resources_.get();
    const size_t ws_bytes = kernel.workspace_size(query);
    if (ws_bytes) ws = dev.alloc(ws_bytes);
    LaunchArgs a{node, io.dev_in, io.dev_out};
    a.stream = stream_;
    a.workspace = ws;
    a.workspace_bytes = ws_bytes;
    a.resources = resources_.get();
    for (int i = 0; i < warmup_; ++i) kernel.enqueue(a);
    std::vector<double> ms;
    for (int i = 0; i < repeats_; ++i) {
      dev.record_event(events_[0], stream_);
      kernel.enqueue(a);
      dev.record_event(events_[1], stream_);
      ms.push_back(dev.elapsed_ms(events_[0], events_[1]));
    }
    release();
    return median(ms);
  } catch (...) {
    release();
    throw;
  }
}

}  // namespace kiln
