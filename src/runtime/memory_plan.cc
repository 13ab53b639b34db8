#include "runtime/memory_plan.h"

#include <algorithm>

#include "common/error.h"
#include "ops/concat.h"
#include "ops/movement_util.h"
#include "ops/op.h"

namespace kiln {

namespace {

constexpr size_t kAlign = 256;   // cudaMalloc's alignment, kept for every class
constexpr size_t kViewAlign = 16;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

Dims dense_strides(const Dims& d) {
  Dims s(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) s[i - 1] = s[i] * d[i];
  return s;
}

class Planner {
 public:
  explicit Planner(const MemoryPlanRequest& r)
      : r_(r), g_(*r.graph), nv_(g_.values().size()), parent_(nv_), off_(nv_, 0), strides_(nv_) {
    for (size_t i = 0; i < nv_; ++i) parent_[i] = i;
    for (const auto& n : g_.nodes()) step_of_[n.get()] = step_of_.size();
    plan_.skip.assign(g_.nodes().size(), false);
    plan_.note.assign(g_.nodes().size(), "");
  }

  MemoryPlan run() {
    if (r_.share) {
      for (size_t s = 0; s < g_.nodes().size(); ++s)
        if (g_.nodes()[s]->op() == "Concat") eliminate_concat(s);
      for (size_t s = 0; s < g_.nodes().size(); ++s) {
        std::string_view op = g_.nodes()[s]->op();
        if (op == "Reshape") reshape_view(s);
        else if (op == "Slice") slice_view(s);
        else if (op == "Pointwise") in_place(s);
      }
    }
    place();
    plan_.strides = std::move(strides_);
    return std::move(plan_);
  }

 private:
  size_t idx(const Value* v) const { return r_.index->at(v); }
  size_t bytes(size_t vi) const {
    return static_cast<size_t>(dims_volume((*r_.dims)[vi])) * dtype_size(g_.values()[vi]->dtype);
  }
  // May share storage: an activation computed by a step, neither a graph input nor an output.
  bool eligible(const Value* v) const {
    return v && !v->is_constant() && v->producer && !g_.is_graph_output(v) &&
           !g_.is_graph_input(v);
  }
  std::pair<size_t, size_t> find(size_t v) const {
    size_t o = 0;
    while (parent_[v] != v) {
      o += off_[v];
      v = parent_[v];
    }
    return {v, o};
  }
  bool is_root(size_t v) const { return parent_[v] == v; }
  bool strided(size_t v) const { return !strides_[v].empty(); }
  bool has_children(size_t v) const {
    for (size_t u = 0; u < nv_; ++u)
      if (u != v && parent_[u] == v) return true;
    return false;
  }
  // Bytes from the value's first element to just past its last.
  size_t extent_bytes(size_t v) const {
    if (!strided(v)) return bytes(v);
    const Dims& d = (*r_.dims)[v];
    size_t last = 0;
    for (size_t k = 0; k < d.size(); ++k) {
      if (d[k] == 0) return 0;
      last += static_cast<size_t>(d[k] - 1) * static_cast<size_t>(strides_[v][k]);
    }
    return (last + 1) * dtype_size(g_.values()[v]->dtype);
  }
  size_t step_of(const Node* n) const { return step_of_.at(n); }
  // Asks strided_ok of every step in `steps` with the strides as they are now.
  bool steps_accept(const std::vector<size_t>& steps) const {
    for (size_t st : steps)
      if (!r_.strided_ok(st, strides_)) return false;
    return true;
  }
  // Puts root `child` (and everything stored in it) inside `base` at byte offset `at`.
  void attach(size_t child, size_t base, size_t at) {
    KILN_CHECK(is_root(child) && find(base).first != child, "memory plan: bad attach");
    parent_[child] = base;
    off_[child] = at;
  }
  size_t class_last_use(size_t root) const {
    size_t last = 0;
    for (size_t v = 0; v < nv_; ++v)
      if (find(v).first == root) {
        size_t u = (*r_.last_use)[v];
        if (u == SIZE_MAX) return SIZE_MAX;
        last = std::max(last, u);
      }
    return last;
  }

  void eliminate_concat(size_t s) {
    const Node& n = *g_.nodes()[s];
    const Value* out = n.outputs[0];
    if (!eligible(out) || n.inputs.empty()) return;
    const Dims& od = (*r_.dims)[idx(out)];
    int64_t axis = n.a<ConcatAttrs>().axis;
    if (axis < 0) axis += static_cast<int64_t>(od.size());
    if (axis < 0 || axis >= static_cast<int64_t>(od.size())) return;
    // Contiguous: each input is one range of the output. Otherwise each is a box of it, with the
    // output's strides, which only a producer that accepts strided output can write.
    bool contiguous = true;
    for (int64_t d = 0; d < axis; ++d) contiguous &= od[d] == 1;
    if (!contiguous && !r_.strided_ok) return;
    const Dims ostr = dense_strides(od);
    const size_t es = dtype_size(out->dtype);
    std::vector<size_t> at;
    size_t pos = 0;   // in elements along the axis
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Value* in = n.inputs[i];
      if (!eligible(in) || in->consumers.size() != 1 || !is_root(idx(in))) return;
      if (!contiguous && has_children(idx(in))) return;   // those assume dense memory
      for (size_t j = 0; j < i; ++j)
        if (n.inputs[j] == in) return;
      const size_t byte = pos * static_cast<size_t>(ostr[axis]) * es;
      if (byte % kViewAlign) return;
      at.push_back(byte);
      pos += static_cast<size_t>((*r_.dims)[idx(in)][axis]);
    }
    if (!contiguous) {
      std::vector<size_t> producers;
      for (const Value* in : n.inputs) {
        strides_[idx(in)] = ostr;
        producers.push_back(step_of(in->producer));
      }
      if (!steps_accept(producers)) {
        for (const Value* in : n.inputs) strides_[idx(in)].clear();
        return;
      }
      plan_.strided += static_cast<int64_t>(n.inputs.size());
    }
    for (size_t i = 0; i < n.inputs.size(); ++i) attach(idx(n.inputs[i]), idx(out), at[i]);
    plan_.skip[s] = true;
    plan_.note[s] = contiguous ? "eliminated: its inputs are written in place"
                               : "eliminated: its inputs are written in place, strided";
    plan_.views += static_cast<int64_t>(n.inputs.size());
  }

  void reshape_view(size_t s) {
    const Node& n = *g_.nodes()[s];
    const Value* in = n.inputs[0];
    const Value* out = n.outputs[0];
    if (!eligible(in) || !eligible(out)) return;
    size_t vi = idx(in), vo = idx(out);
    if (find(vi).first == find(vo).first || strided(vi) || strided(vo)) return;
    if (is_root(vo)) attach(vo, vi, 0);
    else if (is_root(vi)) attach(vi, vo, 0);
    else return;
    plan_.skip[s] = true;
    plan_.note[s] = "view of " + in->name;
    ++plan_.views;
  }

  // A Slice of one axis with step 1: one contiguous range when every dim before it has extent 1,
  // else a box of its input (strided) when every step that reads it accepts that.
  void slice_view(size_t s) {
    const Node& n = *g_.nodes()[s];
    const Value* in = n.inputs[0];
    const Value* out = n.outputs[0];
    if (!eligible(in) || !eligible(out) || !is_root(idx(out))) return;
    if (strided(idx(in)) || has_children(idx(out))) return;
    for (size_t k = 1; k < n.inputs.size(); ++k)
      if (n.inputs[k] && !n.inputs[k]->is_constant()) return;
    const Dims& id = (*r_.dims)[idx(in)];
    const Dims& od = (*r_.dims)[idx(out)];
    if (id.size() != od.size()) return;
    if (n.inputs.size() > 4 && n.inputs[4]) {
      const Tensor& steps = n.inputs[4]->data;
      for (int64_t k = 0; k < steps.numel(); ++k)
        if (steps.get_i64(k) != 1) return;
    }
    int64_t axis = -1;
    for (size_t d = 0; d < id.size(); ++d)
      if (id[d] != od[d]) {
        if (axis >= 0) return;
        axis = static_cast<int64_t>(d);
      }
    if (axis < 0) return;   // copies everything: leave it to the identity pass
    bool contiguous = true;
    for (int64_t d = 0; d < axis; ++d) contiguous &= id[d] == 1;
    if (!contiguous && !r_.strided_ok) return;
    // The start on that axis: find its entry in axes (default 0..k-1).
    const Tensor& starts = n.inputs[1]->data;
    int64_t start = -1;
    for (int64_t k = 0; k < starts.numel(); ++k) {
      int64_t ax = k;
      if (n.inputs.size() > 3 && n.inputs[3]) {
        ax = n.inputs[3]->data.get_i64(k);
        if (ax < 0) ax += static_cast<int64_t>(id.size());
      }
      if (ax != axis) continue;
      int64_t st = starts.get_i64(k);
      if (st < 0) st += id[axis];
      start = std::clamp<int64_t>(st, 0, id[axis]);
    }
    if (start < 0 || start + od[axis] > id[axis]) return;
    const Dims istr = dense_strides(id);
    const size_t at =
        static_cast<size_t>(start) * static_cast<size_t>(istr[axis]) * dtype_size(in->dtype);
    if (at % kViewAlign) return;
    if (!contiguous) {
      strides_[idx(out)] = istr;
      std::vector<size_t> readers;
      for (const Node* c : out->consumers) readers.push_back(step_of(c));
      if (!steps_accept(readers)) {
        strides_[idx(out)].clear();
        return;
      }
      ++plan_.strided;
    }
    attach(idx(out), idx(in), at);
    plan_.skip[s] = true;
    plan_.note[s] = contiguous ? "view of " + in->name : "strided view of " + in->name;
    ++plan_.views;
  }

  void in_place(size_t s) {
    const Node& n = *g_.nodes()[s];
    if (n.outputs.size() != 1 || !r_.in_place_ok) return;
    const Value* out = n.outputs[0];
    if (!eligible(out) || !is_root(idx(out))) return;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const Value* in = n.inputs[i];
      if (!eligible(in) || bytes(idx(in)) != bytes(idx(out)) || strided(idx(in))) continue;
      if ((*r_.dims)[idx(in)] != (*r_.dims)[idx(out)]) continue;
      if (!r_.in_place_ok(s, i)) continue;
      size_t root = find(idx(in)).first;
      // Nothing else may read that memory after this step, and no other input of this step may
      // live in it (another thread could read what this one has already overwritten).
      if (class_last_use(root) > s) continue;
      bool shared = false;
      for (size_t j = 0; j < n.inputs.size(); ++j)
        if (n.inputs[j] && n.inputs[j] != in && !n.inputs[j]->is_constant() &&
            find(idx(n.inputs[j])).first == root)
          shared = true;
      if (shared) continue;
      attach(idx(out), idx(in), 0);
      plan_.note[s] = "in place over " + in->name;
      ++plan_.in_place;
      return;
    }
  }

  void place() {
    const size_t steps = g_.nodes().size();
    plan_.offset.assign(nv_, MemoryPlan::kNoOffset);
    struct Class { size_t bytes = 0, begin = SIZE_MAX, end = 0, offset = 0; bool used = false; };
    std::vector<Class> cls(nv_);
    for (size_t v = 0; v < nv_; ++v) {
      const Value* val = g_.values()[v].get();
      if (val->is_constant()) continue;
      bool input = g_.is_graph_input(val);
      if (!val->producer && !input) continue;
      plan_.naive_bytes += align_up(bytes(v));
      auto [root, at] = find(v);
      Class& c = cls[root];
      c.used = true;
      c.bytes = std::max(c.bytes, at + extent_bytes(v));
      size_t begin = val->producer ? step_of_.at(val->producer) : 0;
      size_t last = (*r_.last_use)[v];
      size_t end = last == SIZE_MAX ? steps : std::max(last, begin);
      c.begin = std::min(c.begin, begin);
      c.end = std::max(c.end, end);
    }
    std::vector<size_t> order;
    for (size_t v = 0; v < nv_; ++v)
      if (cls[v].used) {
        cls[v].bytes = align_up(cls[v].bytes);
        order.push_back(v);
      }
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return cls[a].bytes > cls[b].bytes; });
    std::vector<size_t> placed;
    for (size_t k : order) {
      Class& c = cls[k];
      std::vector<std::pair<size_t, size_t>> busy;   // [offset, offset + bytes) alive meanwhile
      for (size_t q : placed) {
        const Class& o = cls[q];
        if (o.begin <= c.end && c.begin <= o.end) busy.push_back({o.offset, o.offset + o.bytes});
      }
      std::sort(busy.begin(), busy.end());
      size_t at = 0;
      for (const auto& [lo, hi] : busy) {
        if (at + c.bytes <= lo) break;
        at = std::max(at, hi);
      }
      c.offset = at;
      plan_.arena_bytes = std::max(plan_.arena_bytes, at + c.bytes);
      placed.push_back(k);
    }
    for (size_t v = 0; v < nv_; ++v) {
      auto [root, at] = find(v);
      if (cls[root].used) plan_.offset[v] = cls[root].offset + at;
    }
  }

  const MemoryPlanRequest& r_;
  const Graph& g_;
  size_t nv_;
  std::vector<size_t> parent_, off_;
  std::vector<Dims> strides_;
  std::unordered_map<const Node*, size_t> step_of_;
  MemoryPlan plan_;
};

}  // namespace

MemoryPlan plan_memory(const MemoryPlanRequest& r) { return Planner(r).run(); }

}  // namespace kiln
