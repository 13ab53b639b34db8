// The activation memory planner of device contexts: for one set of concrete shapes it decides
// which values share storage and where every value lives in the context's one arena.
//
// Storage sharing, decided in step order so that every rule sees the earlier decisions:
//   - an eliminated Concat: each input is written by its producer straight into its slice of the
//     Concat's output, so the Concat step has nothing left to do. When those slices are
//     contiguous (every dim before the axis has extent 1) any producer can; otherwise each input
//     becomes a strided value (a box of the output, with the output's strides: the channels of
//     an NHWC tensor at batch > 1) and only when its producer's kernel accepts that
//     (MemoryPlanRequest::strided_ok);
//   - a view: a Reshape's output, or a Slice's output that is one contiguous range of its input,
//     is the input's memory; the step launches nothing. A Slice of one axis that is not
//     contiguous becomes a strided view when every step that reads it accepts that;
//   - in place: an element-wise step whose tactic allows it writes its output over an input of the
//     same size that nothing reads afterwards.
// Graph inputs and outputs never share (the caller owns their buffers), constants never do, and a
// view whose byte offset is not a multiple of 16 is not made (kernels use vector loads). A
// strided value is never reshaped in place, written in place, or given values of its own inside
// it: those rules assume dense memory.
// Placement: every storage class lives from its first write to its last read; classes are placed
// largest first at the lowest offset that does not overlap a class alive at the same time.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct MemoryPlan {
  static constexpr size_t kNoOffset = SIZE_MAX;
  std::vector<size_t> offset;       // per value index: byte offset in the arena, or kNoOffset
  std::vector<Dims> strides;        // per value index: element strides; empty when dense
  std::vector<bool> skip;           // per step: its outputs are views, nothing to launch
  std::vector<std::string> note;    // per step: how its outputs are stored, "" when on their own
  size_t arena_bytes = 0;
  size_t naive_bytes = 0;           // every activation in its own aligned buffer
  int64_t views = 0;                // values stored inside another value's memory
  int64_t in_place = 0;             // values written over one of their step's inputs
  int64_t strided = 0;              // of the views, those that are strided
};

struct MemoryPlanRequest {
  const Graph* graph = nullptr;
  const std::unordered_map<const Value*, size_t>* index = nullptr;  // value -> index
  const std::vector<Dims>* dims = nullptr;                          // per value index
  const std::vector<size_t>* last_use = nullptr;  // per value index: last reading step, SIZE_MAX
                                                  // for graph outputs
  // Whether step s may write output 0 over its input i (element by element, same index).
  std::function<bool(size_t step, size_t input)> in_place_ok;
  // Whether step s can run when its values have these per-value strides (empty: dense); asked
  // before a value is made strided, of its producer and of every step that reads it. Without
  // it nothing is strided.
  std::function<bool(size_t step, const std::vector<Dims>& strides)> strided_ok;
  bool share = true;                // false: every value in its own buffer (for comparison)
};

MemoryPlan plan_memory(const MemoryPlanRequest& r);

}  // namespace kiln
