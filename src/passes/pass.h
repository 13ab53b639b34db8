// Graph passes. A pass is a struct with `std::string_view name() const` and
// `void run(Graph&, PassContext&) const`; its header comment states what it expects and
// guarantees. passes/pipeline.cc is the only place where passes are ordered.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace kiln {

struct PassContext {
  int opt_level = 1;
  std::function<void(const std::string&)> progress;
  std::map<std::string, int64_t> stats;   // "fold_constants.folded" -> 12
  void report(const std::string& line) const;  // to the progress callback and the info log
};

// Runs the pipeline of passes for ctx.opt_level over g. After every pass the manager runs dead
// node elimination and the verifier, and prints the graph when KILN_DUMP_AFTER names the pass.
void run_pipeline(Graph& g, PassContext& ctx);

struct FoldConstants {
  // Expects: a verified graph whose input shapes are as the build fixes them.
  // Guarantees: shapes re-inferred in order; every node whose inputs are all constant (and whose
  // outputs are at most kMaxFoldBytes) is computed with the reference and replaced by constant
  // values; Shape/Size of a fully known shape fold even when the data is not constant.
  static constexpr size_t kMaxFoldBytes = 64 << 20;
  std::string_view name() const { return "fold_constants"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct EliminateIdentity {
  // Expects: shapes inferred. Guarantees: Pointwise nodes that copy their input unchanged (same
  // dtype and shape) are bypassed, unless that would make a graph output alias an input or
  // another output.
  std::string_view name() const { return "eliminate_identity"; }
  void run(Graph& g, PassContext& ctx) const;
};

struct EliminateDead {
  // Guarantees: no node whose outputs are all unused (and not graph outputs) remains; values
  // nothing refers to are dropped.
  std::string_view name() const { return "eliminate_dead"; }
  void run(Graph& g, PassContext& ctx) const;
};

}  // namespace kiln
