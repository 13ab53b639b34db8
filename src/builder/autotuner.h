// The one autotuner. At build time it times, for one node at its build-time shapes (the
// optimization profile's opt shapes, or the fixed ones), every candidate a tactic offers
// (Tactic::candidates: library algorithms, engine configs, launch variants) and keeps the fastest;
// the choice goes into the step's prepared state, so the runtime never times.
//
// One timer for every backend: each candidate is prepared and instantiated as the plan would
// instantiate it, given random inputs (constants keep their values), run `warmup` times, then
// timed `repeats` times; its time is the median. On a device backend the runs are enqueued on a
// stream and timed with device events; on the host, with a steady clock around run().
//
// Results go through the timing cache (builder/timing_cache.h), keyed by the step's signature:
// a build with a cache that knows a step times nothing for it, which is what makes rebuilds fast
// and their plan bytes equal.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "builder/timing_cache.h"
#include "ir/graph.h"
#include "runtime/backend.h"

namespace kiln {

struct TuneResult {
  std::string choice;   // the fastest candidate ("" when there was nothing to time)
  double ms = 0;
  int64_t timed = 0;    // candidates timed now (0 when the cache answered)
  bool cached = false;
};

class Autotuner {
 public:
  // `cache` holds the results (the builder gives one even without a cache file, so that steps
  // with the same signature are timed once per build); null: nothing is remembered.
  Autotuner(const Backend& backend, TimingCache* cache, TacticLimits limits = {}, int warmup = 2,
            int repeats = 7);
  ~Autotuner();

  // The fastest of tactic.candidates(node); a tactic without candidates gives an empty result
  // (timed == 0, not cached),
  // or with `time_default` is timed with its heuristic's choice (""), to compare tactics. The
  // node's shapes must be fully known; a candidate whose preparation or run fails is skipped (and
  // said so in the log). Throws kUnsupported when every candidate fails.
  TuneResult tune(const Tactic& tactic, const Node& node, bool time_default = false);

  // What identifies the machine a cache belongs to: the backend, and for a device its GPU,
  // compute capability and CUDA/cuDNN/cuBLASLt versions.
  static std::string device_identity(const Backend& backend);
  // The step's signature: tactic, op, attributes (their structure: real values such as scales do
  // not change how a step runs, so steps that differ only there share one result), and each
  // input's and output's dtype and dims (and whether an input is a constant, whose values the
  // candidates may specialise on).
  static std::string signature(const Tactic& tactic, const Node& node);

  int64_t timed() const { return timed_; }
  // Steps answered by entries the cache had before this tuner (a timing cache file)...
  int64_t cache_hits() const { return hits_; }
  // ... and by an identical step this tuner timed earlier.
  int64_t reused() const { return reused_; }

 private:
  struct Inputs;  // one node's random inputs and its outputs, made once for all its candidates
  double time_candidate(const Tactic& tactic, const Node& node, const std::string& choice,
                        Inputs& io);
  double time_on_host(const Node& node, Kernel& kernel, Inputs& io);
  double time_on_device(const Node& node, Kernel& kernel, Inputs& io);

  const Backend& backend_;
  TimingCache* cache_;
  TacticLimits limits_;
  int warmup_, repeats_;
  int64_t timed_ = 0, hits_ = 0, reused_ = 0;
  std::set<std::string> tuned_here_;
  // Device backends: the stream, events and library handles every candidate is timed with.
  void* stream_ = nullptr;
  void* events_[2] = {nullptr, nullptr};
  std::unique_ptr<DeviceResources> resources_;
};

}  // namespace kiln
