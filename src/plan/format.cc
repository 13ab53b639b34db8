// The plan file format.
//
//   header   "KILNPLAN" | u32 format version | u32 section count | u64 file size |
//            u32 crc32 of the section table | u32 crc32 of the header's first 28 bytes
//   table    per section: u32 id | u32 crc32 of the payload | u64 offset | u64 size
//   payloads INFO (string map), GRAPH (values, nodes with reflected attributes, I/O),
//            STEPS (node index, tactic id, tactic state, the steps of each sub-graph), WEIGHTS (64-byte aligned blob),
//            PROFILES (per optimization profile, per input: name, rank, then min/opt/max
//            per dim)
//
// Weights stay in the file: a loaded plan borrows them from the memory mapping. Every size,
// offset, index and checksum is validated; any inconsistency is a kCorruptPlan error that says
// what was being read.
#include <algorithm>
#include <unordered_map>

#include "common/hash.h"
#include "ir/attrs.h"
#include "ops/op.h"
#include "plan/bytes.h"
#include "plan/plan_data.h"

namespace kiln {

namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
constexpr uint32_t kFormatVersion = 8;  // 2: nodes carry their origins; 3: profiles;
                                        // 4: library tactics store their tuned choice;
                                        // 5: Conv q_y_scale (requantized outputs);
                                        // 6: Conv q_z_scale (int8 residuals);
                                        // 7: sub-graphs of nodes and their steps (If, Loop,
                                        // Scan); 8: Plugin nodes (plugin identity and state)
// Sub-graphs nest at most this deep in a plan (a bound for the untrusted reader's recursion).
constexpr int kMaxGraphDepth = 32;
constexpr size_t kHeaderSize = 32;
constexpr size_t kAlign = 64;
enum SectionId : uint32_t { kInfo = 1, kGraph = 2, kSteps = 3, kWeights = 4, kProfiles = 5 };
constexpr uint64_t kMaxPlanRank = static_cast<uint64_t>(kMaxRank);  // ir/shape.h

enum class Tag : uint8_t { kInt = 1, kFloat, kBool, kString, kInts, kFloats, kDType, kTensor, kProgram };

void write_tensor_inline(ByteWriter& w, const Tensor& t) {
  w.u8(t.defined());
  if (!t.defined()) return;
  w.i32(static_cast<int32_t>(t.dtype()));
  w.u64(t.rank());
  for (int64_t d : t.dims()) w.i64(d);
  w.u64(t.nbytes());
  w.bytes(t.raw(), t.nbytes());
}

DataType read_dtype(ByteReader& r, const char* field, bool allow_undefined = false) {
  int32_t v = r.i32(field);
  auto t = static_cast<DataType>(v);
  if ((v < 0 || v > 20) || (!allow_undefined && t == DataType::kUndefined))
    r.corrupt(cat(field, " has invalid element type ", v));
  return t;
}

Tensor read_tensor_inline(ByteReader& r) {
  if (!r.u8("tensor flag")) return Tensor();
  DataType t = read_dtype(r, "tensor dtype");
  if (!dtype_size(t)) r.corrupt(cat("tensor of unsupported type ", dtype_name(t)));
  uint64_t rank = r.u64("tensor rank");
  if (rank > kMaxPlanRank) r.corrupt(cat("tensor rank ", rank, " is too large"));
  Dims dims(rank);
  int64_t vol = 1;
  for (auto& d : dims) {
    d = r.i64("tensor dim");
    if (d < 0 || (d > 0 && vol > (int64_t(1) << 48) / d)) r.corrupt("tensor dims are invalid");
    vol *= d;
  }
  uint64_t nbytes = r.u64("tensor size");
  if (nbytes != static_cast<uint64_t>(vol) * dtype_size(t))
    r.corrupt(cat("tensor size ", nbytes, " does not match ", dtype_name(t), dims_to_string(dims)));
  const uint8_t* p = r.bytes(nbytes, "tensor data");
  Tensor out(t, dims);
  std::memcpy(out.raw(), p, nbytes);
  return out;
}

void write_program(ByteWriter& w, const expr::Program& p) {
  w.u64(p.input_types.size());
  for (DataType t : p.input_types) w.i32(static_cast<int32_t>(t));
  w.u64(p.code.size());
  for (const auto& in : p.code) {
    w.u8(static_cast<uint8_t>(in.op));
    w.i32(static_cast<int32_t>(in.dtype));
    w.i32(in.a);
    w.i32(in.b);
    w.i32(in.c);
    w.f64(in.fconst);
    w.i64(in.iconst);
  }
  w.u64(p.outputs.size());
  for (int32_t o : p.outputs) w.i32(o);
}

expr::Program read_program(ByteReader& r) {
  expr::Program p;
  uint64_t ni = r.count("program inputs", 4);
  for (uint64_t i = 0; i < ni; ++i) p.input_types.push_back(read_dtype(r, "program input type"));
  uint64_t nc = r.count("program code", 33);
  for (uint64_t i = 0; i < nc; ++i) {
    expr::Instr in;
    uint8_t op = r.u8("instruction op");
    if (op >= static_cast<uint8_t>(expr::Op::kCount)) r.corrupt(cat("unknown instruction ", int(op)));
    in.op = static_cast<expr::Op>(op);
    in.dtype = read_dtype(r, "instruction type");
    in.a = r.i32("operand");
    in.b = r.i32("operand");
    in.c = r.i32("operand");
    in.fconst = r.f64("constant");
    in.iconst = r.i64("constant");
    int ar = expr::op_arity(in.op);
    auto bad = [&](int32_t x) { return x < 0 || x >= static_cast<int32_t>(i); };
    if (in.op == expr::Op::kInput && (in.a < 0 || static_cast<uint64_t>(in.a) >= ni))
      r.corrupt("program input index out of range");
    if ((ar >= 1 && bad(in.a)) || (ar >= 2 && bad(in.b)) || (ar >= 3 && bad(in.c)))
      r.corrupt(cat("instruction ", i, " reads an undefined register"));
    p.code.push_back(in);
  }
  uint64_t no = r.count("program outputs", 4);
  for (uint64_t i = 0; i < no; ++i) {
    int32_t o = r.i32("program output");
    if (o < 0 || static_cast<uint64_t>(o) >= nc) r.corrupt("program output register out of range");
    p.outputs.push_back(o);
  }
  return p;
}

class AttrWriter : public AttrVisitor {
 public:
  explicit AttrWriter(ByteWriter& w) : w_(w) {}
  void head(const char* n, Tag t) { w_.str(n); w_.u8(static_cast<uint8_t>(t)); }
  void operator()(const char* n, int64_t& v) override { head(n, Tag::kInt); w_.i64(v); }
  void operator()(const char* n, double& v) override { head(n, Tag::kFloat); w_.f64(v); }
  void operator()(const char* n, bool& v) override { head(n, Tag::kBool); w_.u8(v); }
  void operator()(const char* n, std::string& v) override { head(n, Tag::kString); w_.str(v); }
  void operator()(const char* n, Ints& v) override {
    head(n, Tag::kInts); w_.u64(v.size()); for (auto x : v) w_.i64(x);
  }
  void operator()(const char* n, Floats& v) override {
    head(n, Tag::kFloats); w_.u64(v.size()); for (auto x : v) w_.f64(x);
  }
  void operator()(const char* n, DataType& v) override { head(n, Tag::kDType); w_.i32(static_cast<int32_t>(v)); }
  void operator()(const char* n, Tensor& v) override { head(n, Tag::kTensor); write_tensor_inline(w_, v); }
  void operator()(const char* n, expr::Program& v) override { head(n, Tag::kProgram); write_program(w_, v); }

 private:
  ByteWriter& w_;
};

class AttrReader : public AttrVisitor {
 public:
  explicit AttrReader(ByteReader& r) : r_(r) {}
  void head(const char* n, Tag t) {
    std::string name = r_.str("attribute name");
    if (name != n) r_.corrupt(cat("expected attribute '", n, "', found '", name, "'"));
    if (r_.u8("attribute tag") != static_cast<uint8_t>(t))
      r_.corrupt(cat("attribute '", n, "' has the wrong type"));
  }
  void operator()(const char* n, int64_t& v) override { head(n, Tag::kInt); v = r_.i64(n); }
  void operator()(const char* n, double& v) override { head(n, Tag::kFloat); v = r_.f64(n); }
  void operator()(const char* n, bool& v) override { head(n, Tag::kBool); v = r_.u8(n) != 0; }
  void operator()(const char* n, std::string& v) override { head(n, Tag::kString); v = r_.str(n); }
  void operator()(const char* n, Ints& v) override {
    head(n, Tag::kInts);
    v.resize(r_.count(n, 8));
    for (auto& x : v) x = r_.i64(n);
  }
  void operator()(const char* n, Floats& v) override {
    head(n, Tag::kFloats);
    v.resize(r_.count(n, 8));
    for (auto& x : v) x = r_.f64(n);
  }
  void operator()(const char* n, DataType& v) override {
    head(n, Tag::kDType);
    v = read_dtype(r_, n, true);
  }
  void operator()(const char* n, Tensor& v) override { head(n, Tag::kTensor); v = read_tensor_inline(r_); }
  void operator()(const char* n, expr::Program& v) override { head(n, Tag::kProgram); v = read_program(r_); }

 private:
  ByteReader& r_;
};

void write_shape(ByteWriter& w, const Shape& s) {
  w.u8(s.rank_known);
  w.u64(s.rank());
  for (const auto& d : s.dims) {
    w.i64(d.value);
    w.str(d.symbol);
  }
}

Shape read_shape(ByteReader& r) {
  Shape s;
  s.rank_known = r.u8("rank flag") != 0;
  uint64_t rank = r.count("rank", 16);
  if (rank > kMaxPlanRank) r.corrupt(cat("rank ", rank, " is too large"));
  for (uint64_t i = 0; i < rank; ++i) {
    Dim d;
    d.value = r.i64("dim");
    d.symbol = r.str("dim symbol");
    if (d.value < -1) r.corrupt("negative dimension");
    s.dims.push_back(d);
  }
  return s;
}

void write_graph_to(ByteWriter& w, const Graph& g, std::string& weights) {
  std::unordered_map<const Value*, int64_t> index;
  w.str(g.name);
  w.u64(g.values().size());
  for (size_t i = 0; i < g.values().size(); ++i) {
    const Value& v = *g.values()[i];
    index[&v] = static_cast<int64_t>(i);
    w.str(v.name);
    w.i32(static_cast<int32_t>(v.dtype));
    write_shape(w, v.shape);
    w.u8(v.is_constant());
    if (v.is_constant()) {
      while (weights.size() % kAlign) weights.push_back('\0');
      w.i32(static_cast<int32_t>(v.data.dtype()));
      w.u64(v.data.rank());
      for (int64_t d : v.data.dims()) w.i64(d);
      w.u64(weights.size());
      w.u64(v.data.nbytes());
      weights.append(static_cast<const char*>(v.data.raw()), v.data.nbytes());
    }
  }
  w.u64(g.nodes().size());
  for (const auto& n : g.nodes()) {
    w.str(n->name);
    w.str(n->op());
    AttrWriter aw(w);
    n->attrs->accept(aw);
    w.u64(n->inputs.size());
    for (Value* v : n->inputs) w.i64(v ? index.at(v) : -1);
    w.u64(n->outputs.size());
    for (Value* v : n->outputs) w.i64(index.at(v));
    w.u64(n->origins.size());
    for (const auto& o : n->origins) w.str(o);
    w.u64(n->subgraphs.size());
    for (const auto& sg : n->subgraphs) write_graph_to(w, *sg, weights);
  }
  w.u64(g.inputs.size());
  for (Value* v : g.inputs) w.i64(index.at(v));
  w.u64(g.outputs.size());
  for (Value* v : g.outputs) w.i64(index.at(v));
}

std::string write_graph(const Graph& g, std::string& weights) {
  ByteWriter w;
  write_graph_to(w, g, weights);
  return w.buf;
}

std::unique_ptr<Graph> read_graph_from(ByteReader& r, const uint8_t* weights, size_t weights_size,
                                       const std::shared_ptr<const void>& keepalive, int depth) {
  if (depth > kMaxGraphDepth) r.corrupt(cat("sub-graphs nest deeper than ", kMaxGraphDepth));
  auto g = std::make_unique<Graph>();
  g->name = r.str("graph name");
  uint64_t nv = r.count("value count", 16);
  std::vector<Value*> values;
  for (uint64_t i = 0; i < nv; ++i) {
    std::string name = r.str("value name");
    if (g->find_value(name)) r.corrupt(cat("value name '", name, "' appears twice"));
    DataType t = read_dtype(r, "value dtype", true);
    Shape s = read_shape(r);
    Value* v = g->add_value(name, t, s);
    if (r.u8("constant flag")) {
      DataType ct = read_dtype(r, "weight dtype");
      if (!dtype_size(ct)) r.corrupt(cat("weight '", name, "' has unsupported type"));
      uint64_t rank = r.count("weight rank", 8);
      if (rank > kMaxPlanRank) r.corrupt("weight rank too large");
      Dims dims(rank);
      int64_t vol = 1;
      for (auto& d : dims) {
        d = r.i64("weight dim");
        if (d < 0 || (d > 0 && vol > (int64_t(1) << 48) / d)) r.corrupt("weight dims are invalid");
        vol *= d;
      }
      uint64_t off = r.u64("weight offset"), nbytes = r.u64("weight size");
      if (nbytes != static_cast<uint64_t>(vol) * dtype_size(ct))
        r.corrupt(cat("weight '", name, "' size ", nbytes, " does not match its shape"));
      if (off > weights_size || nbytes > weights_size - off)
        r.corrupt(cat("weight '", name, "' lies outside the weights section"));
      const uint8_t* p = weights + off;
      if (reinterpret_cast<uintptr_t>(p) % std::max<size_t>(dtype_size(ct), 1) == 0) {
        v->data = Tensor::borrow(ct, dims, p, keepalive);
      } else {
        v->data = Tensor(ct, dims);
        std::memcpy(v->data.raw(), p, nbytes);
      }
    }
    values.push_back(v);
  }
  auto value_at = [&](int64_t idx, bool allow_none) -> Value* {
    if (idx == -1 && allow_none) return nullptr;
    if (idx < 0 || static_cast<uint64_t>(idx) >= values.size())
      r.corrupt(cat("value index ", idx, " out of range"));
    return values[idx];
  };
  uint64_t nn = r.count("node count", 24);
  for (uint64_t i = 0; i < nn; ++i) {
    std::string name = r.str("node name");
    std::string op = r.str("node op");
    const OpDef* def = find_op(op);
    if (!def) r.corrupt(cat("node '", name, "' has unknown op '", op, "'"));
    auto attrs = def->make_attrs();
    AttrReader ar(r);
    attrs->accept(ar);
    std::vector<Value*> ins, outs;
    uint64_t ni = r.count("node inputs", 8);
    for (uint64_t k = 0; k < ni; ++k) ins.push_back(value_at(r.i64("input"), true));
    uint64_t no = r.count("node outputs", 8);
    for (uint64_t k = 0; k < no; ++k) {
      Value* o = value_at(r.i64("output"), false);
      if (o->producer || o->is_constant()) r.corrupt(cat("value '", o->name, "' is produced twice"));
      outs.push_back(o);
    }
    Node* node = g->add_node(op, ins, outs, std::move(attrs), name);
    uint64_t no_origins = r.count("node origins", 8);
    for (uint64_t k = 0; k < no_origins; ++k) node->origins.push_back(r.str("node origin"));
    uint64_t n_sub = r.count("node sub-graphs", 8);
    for (uint64_t k = 0; k < n_sub; ++k)
      node->subgraphs.push_back(read_graph_from(r, weights, weights_size, keepalive, depth + 1));
  }
  uint64_t gi = r.count("graph inputs", 8);
  for (uint64_t k = 0; k < gi; ++k) g->inputs.push_back(value_at(r.i64("graph input"), false));
  uint64_t go = r.count("graph outputs", 8);
  for (uint64_t k = 0; k < go; ++k) g->outputs.push_back(value_at(r.i64("graph output"), false));
  return g;
}

std::unique_ptr<Graph> read_graph(ByteReader& r, const uint8_t* weights, size_t weights_size,
                                  const std::shared_ptr<const void>& keepalive) {
  std::unique_ptr<Graph> g = read_graph_from(r, weights, weights_size, keepalive, 0);
  if (!r.done()) r.corrupt("trailing bytes after the graph");
  try {
    verify_graph(*g, true);
  } catch (const Error& e) {
    r.corrupt(cat("graph is inconsistent: ", e.message()));
  }
  return g;
}

void write_steps(ByteWriter& w, const std::vector<Step>& steps) {
  w.u64(steps.size());
  for (const auto& s : steps) {
    w.u64(s.node);
    w.str(s.tactic);
    w.str(s.state);
    w.u64(s.bodies.size());
    for (const auto& b : s.bodies) write_steps(w, b);
  }
}

// The steps of graph g (and, inside control-flow steps, of its sub-graphs): one per node, in
// the graph's (execution) order, and one step sequence per sub-graph.
std::vector<Step> read_steps(ByteReader& rs, const Graph& g) {
  std::vector<Step> steps;
  uint64_t ns = rs.count("step count", 32);
  for (uint64_t i = 0; i < ns; ++i) {
    Step s;
    s.node = rs.u64("step node");
    if (s.node >= g.nodes().size()) rs.corrupt(cat("step ", i, " names node ", s.node));
    // A repeated or permuted index would run a node twice, or before its inputs exist.
    if (s.node != i) rs.corrupt(cat("step ", i, " names node ", s.node, ", not node ", i));
    s.tactic = rs.str("step tactic");
    s.state = rs.str("step state");
    const Node& n = *g.nodes()[s.node];
    uint64_t nb = rs.count("step bodies", 8);
    if (nb != n.subgraphs.size())
      rs.corrupt(cat("step ", i, " has ", nb, " step sequences for the ", n.subgraphs.size(),
                     " sub-graphs of ", n.label()));
    for (uint64_t k = 0; k < nb; ++k) s.bodies.push_back(read_steps(rs, *n.subgraphs[k]));
    steps.push_back(std::move(s));
  }
  if (steps.size() != g.nodes().size())
    rs.corrupt(cat(steps.size(), " steps for ", g.nodes().size(), " nodes"));
  return steps;
}

void write_info(ByteWriter& w, const BuildInfo& b) {
  std::map<std::string, std::string> m = b.extra;
  m["kiln_version"] = b.kiln_version;
  m["device"] = b.device;
  m["gpu_name"] = b.gpu_name;
  m["compute_capability"] = b.compute_capability;
  m["cuda_version"] = b.cuda_version;
  m["cudnn_version"] = b.cudnn_version;
  m["cublaslt_version"] = b.cublaslt_version;
  w.u64(m.size());
  for (auto& [k, v] : m) {
    w.str(k);
    w.str(v);
  }
}

BuildInfo read_info(ByteReader& r) {
  BuildInfo b;
  uint64_t n = r.count("info entries", 16);
  std::map<std::string, std::string> m;
  for (uint64_t i = 0; i < n; ++i) {
    std::string k = r.str("info key");
    m[k] = r.str("info value");
  }
  auto take = [&](const char* k) {
    auto it = m.find(k);
    if (it == m.end()) return std::string();
    std::string v = it->second;
    m.erase(it);
    return v;
  };
  b.kiln_version = take("kiln_version");
  b.device = take("device");
  b.gpu_name = take("gpu_name");
  b.compute_capability = take("compute_capability");
  b.cuda_version = take("cuda_version");
  b.cudnn_version = take("cudnn_version");
  b.cublaslt_version = take("cublaslt_version");
  b.extra = std::move(m);
  if (b.device.empty()) r.corrupt("the plan does not say which device it targets");
  return b;
}

void write_profiles(ByteWriter& w, const std::vector<OptimizationProfile>& profiles) {
  w.u64(profiles.size());
  for (const OptimizationProfile& p : profiles) {
    w.u64(p.min.size());
    for (const auto& [name, mn] : p.min) {
      const auto& op = p.opt.at(name);
      const auto& mx = p.max.at(name);
      w.str(name);
      w.u64(mn.size());
      for (size_t d = 0; d < mn.size(); ++d) {
        w.i64(mn[d]);
        w.i64(op[d]);
        w.i64(mx[d]);
      }
    }
  }
}

// Reads the profiles and checks them against the graph, as untrusted input: every name an input,
// ranks equal, 0 <= min <= opt <= max, fixed dims equal to the graph's, every dynamic input in
// every profile.
std::vector<OptimizationProfile> read_profiles(ByteReader& r, const Graph& g) {
  std::vector<OptimizationProfile> out;
  uint64_t n = r.count("profile count", 8);
  for (uint64_t k = 0; k < n; ++k) {
    OptimizationProfile p;
    uint64_t inputs = r.count("profile inputs", 16);
    for (uint64_t i = 0; i < inputs; ++i) {
      std::string name = r.str("profile input name");
      const Value* v = nullptr;
      for (const Value* in : g.inputs)
        if (in->name == name) v = in;
      if (!v) r.corrupt(cat("profile ", k, " names '", name, "', which is not an input"));
      uint64_t rank = r.count("profile rank", 24);
      if (!v->shape.rank_known || rank != v->shape.rank())
        r.corrupt(cat("profile ", k, " gives input '", name, "' rank ", rank));
      std::vector<int64_t> mn(rank), op(rank), mx(rank);
      for (uint64_t d = 0; d < rank; ++d) {
        mn[d] = r.i64("profile min");
        op[d] = r.i64("profile opt");
        mx[d] = r.i64("profile max");
        const Dim& gd = v->shape.dims[d];
        if (mn[d] < 0 || mn[d] > op[d] || op[d] > mx[d] ||
            (gd.known() && (mn[d] != gd.value || mx[d] != gd.value)))
          r.corrupt(cat("profile ", k, " bounds of input '", name, "' dimension ", d,
                        " are inconsistent"));
      }
      if (!p.min.emplace(name, mn).second) r.corrupt(cat("profile ", k, " repeats '", name, "'"));
      p.opt[name] = op;
      p.max[name] = mx;
    }
    for (const Value* in : g.inputs)
      if (!in->shape.fully_known() && !p.min.count(in->name))
        r.corrupt(cat("profile ", k, " does not bound dynamic input '", in->name, "'"));
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

std::string serialize_plan(const PlanData& p) {
  std::string weights;
  std::string graph = write_graph(*p.graph, weights);
  ByteWriter info;
  write_info(info, p.info);
  ByteWriter steps;
  write_steps(steps, p.steps);
  ByteWriter profiles;
  write_profiles(profiles, p.profiles);
  std::vector<std::pair<uint32_t, const std::string*>> sections = {
      {kInfo, &info.buf}, {kGraph, &graph}, {kSteps, &steps.buf}, {kWeights, &weights},
      {kProfiles, &profiles.buf}};
  ByteWriter table;
  uint64_t offset = kHeaderSize + sections.size() * 24;
  std::vector<uint64_t> offsets;
  for (auto& [id, data] : sections) {
    offset = (offset + kAlign - 1) / kAlign * kAlign;
    offsets.push_back(offset);
    table.u32(id);
    table.u32(crc32(data->data(), data->size()));
    table.u64(offset);
    table.u64(data->size());
    offset += data->size();
  }
  ByteWriter out;
  out.bytes(kMagic, 8);
  out.u32(kFormatVersion);
  out.u32(static_cast<uint32_t>(sections.size()));
  out.u64(offset);
  out.u32(crc32(table.buf.data(), table.buf.size()));
  out.u32(crc32(out.buf.data(), out.buf.size()));
  out.bytes(table.buf.data(), table.buf.size());
  for (size_t i = 0; i < sections.size(); ++i) {
    out.align(kAlign);
    KILN_CHECK(out.buf.size() == offsets[i]);
    out.bytes(sections[i].second->data(), sections[i].second->size());
  }
  return out.buf;
}

std::unique_ptr<PlanData> deserialize_plan(const uint8_t* data, size_t size,
                                           std::shared_ptr<const void> keepalive) {
  ByteReader h(data, size, "header");
  if (size < 8 || std::memcmp(data, kMagic, 8) != 0)
    fail(StatusCode::kCorruptPlan, "not a kiln plan file (the magic bytes are missing)");
  h.bytes(8, "magic");
  uint32_t version = h.u32("format version");
  if (version != kFormatVersion)
    fail(StatusCode::kIncompatible, "plan format version ", version, " is not supported (this kiln ",
         "reads version ", kFormatVersion, "); rebuild the plan");
  uint32_t n_sections = h.u32("section count");
  uint64_t file_size = h.u64("file size");
  uint32_t table_crc = h.u32("table checksum");
  uint32_t header_crc_pos = static_cast<uint32_t>(h.pos());
  uint32_t header_crc = h.u32("header checksum");
  if (crc32(data, header_crc_pos) != header_crc) h.corrupt("header checksum mismatch");
  if (file_size != size)
    fail(StatusCode::kCorruptPlan, "plan file is ", size, " bytes but its header says ", file_size,
         " (truncated or padded)");
  if (n_sections > 64) h.corrupt(cat("section count ", n_sections, " is implausible"));
  const uint8_t* table = h.bytes(size_t(n_sections) * 24, "section table");
  if (crc32(table, size_t(n_sections) * 24) != table_crc) h.corrupt("section table checksum mismatch");
  ByteReader t(table, size_t(n_sections) * 24, "section table");
  struct Sec { const uint8_t* p = nullptr; size_t n = 0; };
  std::map<uint32_t, Sec> secs;
  for (uint32_t i = 0; i < n_sections; ++i) {
    uint32_t id = t.u32("section id"), crc = t.u32("section checksum");
    uint64_t off = t.u64("section offset"), n = t.u64("section size");
    if (off > size || n > size - off)
      fail(StatusCode::kCorruptPlan, "plan section ", id, " lies outside the file");
    if (crc32(data + off, n) != crc)
      fail(StatusCode::kCorruptPlan, "plan section ", id, " checksum mismatch (the file is corrupt)");
    secs[id] = {data + off, n};
  }
  for (uint32_t id : {kInfo, kGraph, kSteps, kWeights, kProfiles})
    if (!secs.count(id)) fail(StatusCode::kCorruptPlan, "plan section ", id, " is missing");

  auto p = std::make_unique<PlanData>();
  p->keepalive = keepalive;
  ByteReader ri(secs[kInfo].p, secs[kInfo].n, "info section");
  p->info = read_info(ri);
  ByteReader rg(secs[kGraph].p, secs[kGraph].n, "graph section");
  p->graph = read_graph(rg, secs[kWeights].p, secs[kWeights].n, keepalive);
  ByteReader rs(secs[kSteps].p, secs[kSteps].n, "steps section");
  p->steps = read_steps(rs, *p->graph);
  if (!rs.done()) rs.corrupt("trailing bytes");
  ByteReader rp(secs[kProfiles].p, secs[kProfiles].n, "profiles section");
  p->profiles = read_profiles(rp, *p->graph);
  if (!rp.done()) rp.corrupt("trailing bytes");
  return p;
}

}  // namespace kiln
