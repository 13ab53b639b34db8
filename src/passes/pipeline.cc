// The only place where passes are ordered.
#include <cstdio>

#include "common/env.h"
#include "common/log.h"
#include "ops/infer.h"
#include "passes/pass.h"

namespace kiln {

namespace {

template <class P>
void run_pass(const P& pass, Graph& g, PassContext& ctx) {
  pass.run(g, ctx);
  EliminateDead{}.run(g, ctx);
  if (env::verify_passes()) verify_graph(g);
  std::string dump = env::dump_after();
  if (dump == "all" || dump == pass.name())
    std::fprintf(stderr, "--- graph after %s ---\n%s", std::string(pass.name()).c_str(),
                 print_graph(g).c_str());
}

}  // namespace

void PassContext::report(const std::string& line) const {
  if (progress) progress(line);
  log(LogLevel::kInfo, "pass: ", line);
}

void run_pipeline(Graph& g, PassContext& ctx) {
  infer_graph(g);
  // Control flow: each sub-graph (If branch, Loop or Scan body) is a graph of its own and goes
  // through this same pipeline, after the inference above has given its inputs the shapes of the
  // values they capture. The passes below treat a control-flow node as an opaque op.
  for (const auto& n : g.nodes())
    for (const auto& sg : n->subgraphs) run_pipeline(*sg, ctx);
  if (ctx.opt_level >= 1) {
    // Folding first: it resolves shape subgraphs, which every later pass wants to see as
    // constants.
    run_pass(FoldConstants{}, g, ctx);
    // Identity removal after folding, because folding turns computed shapes into constants and
    // can leave copies behind.
    run_pass(EliminateIdentity{}, g, ctx);
    // Gathers of constant consecutive indices become Slice (and Reshape) views; indices are
    // constants only once shape subgraphs are folded.
    run_pass(GatherToSlice{}, g, ctx);
    // BatchNorm folding after identity removal (a copy between a Conv and its BatchNorm would
    // hide the pair) and before epilogue fusion, which then fuses the bias it produces.
    run_pass(FoldBatchNorm{}, g, ctx);
    // Quantization after BatchNorm folding (the weights are final, and per-channel scales are
    // taken of them) and before epilogue fusion, which then fuses bias, residual and ReLU into the
    // quantized products as into float ones. Calibration measures the graph as it is here.
    if (ctx.stop_before_quantization) return;
    if (ctx.activation_scales) run_pass(InsertQuantization{}, g, ctx);
    // A QAT model's DequantizeLinear nodes first move past data movement to the products.
    run_pass(PropagateDequantize{}, g, ctx);
    run_pass(FoldQuantization{}, g, ctx);
    // Epilogue fusion on every device (it changes float32 results only by rounding): after the
    // identity removal, which may sit between a Conv and its Relu; before precision assignment,
    // whose casts would hide the Pointwise programs its matchers look for, and before the layout
    // choice, so that a residual Add is already an input of its Conv (one fewer node to keep in
    // the NHWC region).
    run_pass(FuseEpilogue{}, g, ctx);
    // After the epilogues (ReLU is then part of the Conv): a quantized Conv read only by the next
    // layer's QuantizeLinear writes int8 itself.
    run_pass(FoldRequantization{}, g, ctx);
    // Attention after the clean-up passes: folding makes the scale and the causal mask
    // constants, identity removal drops the Identity/Dropout/same-type Cast copies that sit
    // between a Softmax and its MatMul, and GatherToSlice has turned qkv[i] splits into views.
    // After the quantization passes, so that calibration measures the unfused graph's tensors and
    // Q/DQ propagation sees plain MatMuls. Before AssignPrecision, so that the Attention node
    // switches to float16 as one compute op (casts only at its edges, the softmax in float32
    // inside it), and before FusePointwise, which would merge the scale and mask steps into other
    // programs and hide the pattern.
    run_pass(FuseAttention{}, g, ctx);
  }
  // Precision is what the caller asked for, not an optimisation: it runs at every level. Before
  // the layout choice, because NHWC pays only for float16/bfloat16 convolutions (the layout pass
  // keys on the final dtypes), and the transposes it inserts then move half the bytes.
  // It also runs without either flag: --layer-precision may pin layers to fp16.
  run_pass(AssignPrecision{}, g, ctx);
  // Plugins after precision: they are offered the types their neighbours now write first, so a
  // plugin that accepts float16 keeps a float16 region unbroken. Before the layout choice, whose
  // regions then see the plugins' own Casts and Transposes as ordinary nodes.
  run_pass(NegotiatePluginFormats{}, g, ctx);
  if (ctx.opt_level >= 1) {
    run_pass(ChooseLayout{}, g, ctx);
    // Sibling merging after precision and layout: which ops may merge (same dtype) and on which
    // axis their outputs are sliced (channels-last values hold NHWC dims) are final only then.
    // Ahead of the pointwise and epilogue-program fusions only by choice: a Conv given an
    // epilogue program no longer merges, and a Pointwise behind a Slice no longer fuses into it.
    run_pass(MergeSiblings{}, g, ctx);
    // Pointwise chains fuse after precision and layout, so that the Casts at precision edges and
    // the element-wise ops around Transposes fuse too.
    run_pass(FusePointwise{}, g, ctx);
    // [anchor: fuse_epilogue_program]
    // Concat elimination, Reshape/Slice views and in-place steps are the memory planner's
    // (runtime/memory_plan.h), not a pass: whether a slice is contiguous depends on the concrete
    // shapes a context runs with.
  }
}

}  // namespace kiln
