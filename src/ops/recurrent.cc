// Recurrent: ONNX RNN, GRU and LSTM (one op, the cell chosen by an attribute). The reference
// follows the ONNX equations step by step in double; sequence_lens cuts each batch row short
// (Y is 0 past a row's length; Y_h/Y_c hold the state after the row's last valid step).
#include "ops/recurrent.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "ops/op_util.h"

namespace kiln {

namespace {

enum class Cell { kRnn, kGru, kLstm };

Cell cell_of(const std::string& s) {
  if (s == "rnn") return Cell::kRnn;
  if (s == "gru") return Cell::kGru;
  if (s == "lstm") return Cell::kLstm;
  fail(StatusCode::kInvalidModel, "Recurrent cell must be rnn, gru or lstm, got '", s, "'");
}

int64_t gates_of(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 3 : 4; }
// Activation functions per direction: f (RNN); f, g (GRU); f, g, h (LSTM).
size_t acts_per_dir(Cell c) { return c == Cell::kRnn ? 1 : c == Cell::kGru ? 2 : 3; }

int64_t num_dirs_of(const std::string& d) {
  if (d == "forward" || d == "reverse") return 1;
  if (d == "bidirectional") return 2;
  fail(StatusCode::kInvalidModel,
       "Recurrent direction must be forward, reverse or bidirectional, got '", d, "'");
}

struct Activation {
  enum Kind {
    kRelu,
    kTanh,
    kSigmoid,
    kAffine,
    kLeakyRelu,
    kThresholdedRelu,
    kScaledTanh,
    kHardSigmoid,
    kElu,
    kSoftsign,
    kSoftplus
  };
  Kind kind = kTanh;
  double alpha = 0, beta = 0;

  double operator()(double x) const {
    switch (kind) {
      case kRelu:
        return x > 0 ? x : 0;
      case kTanh:
        return std::tanh(x);
      case kSigmoid:
        return 1 / (1 + std::exp(-x));
      case kAffine:
        return alpha * x + beta;
      case kLeakyRelu:
        return x >= 0 ? x : alpha * x;
      case kThresholdedRelu:
        return x > alpha ? x : 0;
      case kScaledTanh:
        return alpha * std::tanh(beta * x);
      case kHardSigmoid:
        return std::max(0.0, std::min(1.0, alpha * x + beta));
      case kElu:
        return x >= 0 ? x : alpha * (std::exp(x) - 1);
      case kSoftsign:
        return x / (1 + std::fabs(x));
      case kSoftplus:
        return x > 30 ? x : std::log1p(std::exp(x));
    }
    return x;
  }
};

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (!std::isspace(static_cast<unsigned char>(ch))) {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  if (!s.empty()) out.push_back(cur);
  return out;
}

// The activations of every direction (forward first), alpha/beta taken in order by the functions
// that use them; a list for one direction serves both directions of a bidirectional op.
std::vector<Activation> activations_of(const RecurrentAttrs& a, Cell cell, int64_t ndir) {
  size_t per = acts_per_dir(cell);
  std::vector<std::string> names = split_names(a.activations);
  if (names.empty()) {
    if (cell == Cell::kRnn)
      names = {"tanh"};
    else if (cell == Cell::kGru)
      names = {"sigmoid", "tanh"};
    else
      names = {"sigmoid", "tanh", "tanh"};
  }
  if (names.size() != per && names.size() != per * static_cast<size_t>(ndir))
    fail(StatusCode::kInvalidModel, "Recurrent activations must list ", per * ndir,
         " functions, got ", names.size());
  size_t ai = 0, bi = 0;
  auto take = [](const Floats& v, size_t& i, double def) { return i < v.size() ? v[i++] : def; };
  std::vector<Activation> out;
  for (const std::string& n : names) {
    Activation f;
    if (n == "relu")
      f.kind = Activation::kRelu;
    else if (n == "tanh")
      f.kind = Activation::kTanh;
    else if (n == "sigmoid")
      f.kind = Activation::kSigmoid;
    else if (n == "softsign")
      f.kind = Activation::kSoftsign;
    else if (n == "softplus")
      f.kind = Activation::kSoftplus;
    else if (n == "affine") {
      f.kind = Activation::kAffine;
      f.alpha = take(a.activation_alpha, ai, 1.0);
      f.beta = take(a.activation_beta, bi, 0.0);
    } else if (n == "leakyrelu") {
      f.kind = Activation::kLeakyRelu;
      f.alpha = take(a.activation_alpha, ai, 0.01);
    } else if (n == "thresholdedrelu") {
      f.kind = Activation::kThresholdedRelu;
      f.alpha = take(a.activation_alpha, ai, 1.0);
    } else if (n == "scaledtanh") {
      f.kind = Activation::kScaledTanh;
      f.alpha = take(a.activation_alpha, ai, 1.0);
      f.beta = take(a.activation_beta, bi, 1.0);
    } else if (n == "hardsigmoid") {
      f.kind = Activation::kHardSigmoid;
      f.alpha = take(a.activation_alpha, ai, 0.2);
      f.beta = take(a.activation_beta, bi, 0.5);
    } else if (n == "elu") {
      f.kind = Activation::kElu;
      f.alpha = take(a.activation_alpha, ai, 1.0);
    } else {
      fail(StatusCode::kUnsupported, "Recurrent activation '", n, "' is not supported");
    }
    out.push_back(f);
  }
  if (out.size() == per && ndir == 2) out.insert(out.end(), out.begin(), out.end());
  return out;
}

std::string dims_str(const std::vector<Dim>& d) { return Shape(d).str(); }

// Checks a shape against the expected dims where both are known; names the input on mismatch.
void check_shape(const InferContext& ctx, const char* name, const Shape& s,
                 const std::vector<Dim>& want) {
  if (!s.rank_known) return;
  bool ok = s.rank() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i)
    if (s[i].known() && want[i].known() && s[i].value != want[i].value) ok = false;
  if (!ok)
    ctx.error(
        cat("Recurrent input ", name, " must have shape ", dims_str(want), ", got ", s.str()));
}

void infer(InferContext& ctx) {
  const auto& a = ctx.node().a<RecurrentAttrs>();
  Cell cell = cell_of(a.cell);
  int64_t ndir = num_dirs_of(a.direction);
  int64_t g = gates_of(cell);
  if (a.layout != 0 && a.layout != 1) ctx.error(cat("Recurrent layout must be 0 or 1"));
  activations_of(a, cell, ndir);  // validates names and counts
  DataType t = ctx.dtype(0);
  if (!dtype_is_float(t)) ctx.error(cat("Recurrent X must be floating-point, got ", dtype_name(t)));
  const Shape& xs = ctx.shape(0);
  if (xs.rank_known && xs.rank() != 3)
    ctx.error(cat("Recurrent input X must be 3-D, got ", xs.str()));
  Dim seq, batch, input;
  if (xs.rank_known) {
    seq = xs[a.layout == 0 ? 0 : 1];
    batch = xs[a.layout == 0 ? 1 : 0];
    input = xs[2];
  }
  Dim hidden;
  if (a.hidden_size > 0) {
    hidden = Dim(a.hidden_size);
  } else if (ctx.shape(2).rank_known && ctx.shape(2).rank() == 3) {
    hidden = ctx.shape(2)[2];
  }
  Dim gh = hidden.known() ? Dim(g * hidden.value) : Dim::unknown();
  check_shape(ctx, "W", ctx.shape(1), {ndir, gh, input});
  check_shape(ctx, "R", ctx.shape(2), {ndir, gh, hidden});
  if (ctx.has_input(3))
    check_shape(ctx, "B", ctx.shape(3), {ndir, hidden.known() ? Dim(2 * g * hidden.value) : Dim()});
  if (ctx.has_input(4)) {
    check_shape(ctx, "sequence_lens", ctx.shape(4), {batch});
    DataType st = ctx.dtype(4);
    if (st != DataType::kInt32 && st != DataType::kInt64)
      ctx.error(cat("Recurrent sequence_lens must be int32, got ", dtype_name(st)));
  }
  std::vector<Dim> state =
      a.layout == 0 ? std::vector<Dim>{ndir, batch, hidden} : std::vector<Dim>{batch, ndir, hidden};
  if (ctx.has_input(5)) check_shape(ctx, "initial_h", ctx.shape(5), state);
  if (cell == Cell::kLstm) {
    if (ctx.has_input(6)) check_shape(ctx, "initial_c", ctx.shape(6), state);
    if (ctx.has_input(7))
      check_shape(ctx, "P", ctx.shape(7), {ndir, hidden.known() ? Dim(3 * hidden.value) : Dim()});
  } else if (ctx.num_inputs() > 6) {
    ctx.error(cat("Recurrent ", a.cell, " takes at most 6 inputs"));
  }
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (i != 4 && ctx.has_input(i) && ctx.dtype(i) != t)
      ctx.error(cat("Recurrent input ", i, " must be ", dtype_name(t), " like X, got ",
                    dtype_name(ctx.dtype(i))));
  size_t nout = ctx.node().outputs.size();
  size_t max_out = cell == Cell::kLstm ? 3 : 2;
  if (nout > max_out) ctx.error(cat("Recurrent ", a.cell, " has at most ", max_out, " outputs"));
  std::vector<Dim> y = a.layout == 0 ? std::vector<Dim>{seq, ndir, batch, hidden}
                                     : std::vector<Dim>{batch, seq, ndir, hidden};
  if (nout > 0) ctx.set_output(0, t, Shape(y));
  for (size_t i = 1; i < nout; ++i) ctx.set_output(i, t, Shape(state));
}

void compute(const ComputeArgs& args) {
  const auto& a = args.node.a<RecurrentAttrs>();
  Cell cell = cell_of(a.cell);
  int64_t ndir = num_dirs_of(a.direction);
  int64_t G = gates_of(cell);
  std::vector<Activation> acts = activations_of(a, cell, ndir);
  size_t per = acts_per_dir(cell);
  const Dims& xd = args.in(0).dims();
  int64_t S = xd[a.layout == 0 ? 0 : 1], N = xd[a.layout == 0 ? 1 : 0], I = xd[2];
  int64_t H = a.hidden_size > 0 ? a.hidden_size : args.in(2).dims()[2];
  std::vector<double> x = to_doubles(args.in(0)), w = to_doubles(args.in(1)),
                      r = to_doubles(args.in(2));
  if (static_cast<int64_t>(w.size()) != ndir * G * H * I ||
      static_cast<int64_t>(r.size()) != ndir * G * H * H)
    fail(StatusCode::kInvalidArgument, "Recurrent W or R does not match hidden_size ", H);
  auto opt = [&](size_t i, int64_t n) {
    if (!args.has(i)) return std::vector<double>(static_cast<size_t>(n), 0.0);
    std::vector<double> v = to_doubles(args.in(i));
    if (static_cast<int64_t>(v.size()) != n)
      fail(StatusCode::kInvalidArgument, "Recurrent input ", i, " has ", v.size(),
           " elements, expected ", n);
    return v;
  };
  std::vector<double> bias = opt(3, ndir * 2 * G * H);
  std::vector<double> h0 = opt(5, ndir * N * H);
  bool lstm = cell == Cell::kLstm;
  std::vector<double> c0 = lstm ? opt(6, ndir * N * H) : std::vector<double>();
  std::vector<double> peep = lstm ? opt(7, ndir * 3 * H) : std::vector<double>();
  std::vector<int64_t> lens(static_cast<size_t>(N), S);
  if (args.has(4)) {
    lens = to_int64s(args.in(4));
    if (static_cast<int64_t>(lens.size()) != N)
      fail(StatusCode::kInvalidArgument, "Recurrent sequence_lens must have ", N, " values");
    for (int64_t l : lens)
      if (l < 0 || l > S)
        fail(StatusCode::kInvalidArgument, "Recurrent sequence_lens value ", l, " is outside [0, ",
             S, "]");
  }
  // Index helpers for the two layouts.
  auto x_at = [&](int64_t t, int64_t b) {
    return a.layout == 0 ? (t * N + b) * I : (b * S + t) * I;
  };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return a.layout == 0 ? ((t * ndir + d) * N + b) * H : ((b * S + t) * ndir + d) * H;
  };
  auto st_at = [&](int64_t d, int64_t b) {
    return a.layout == 0 ? (d * N + b) * H : (b * ndir + d) * H;
  };
  std::vector<double> y(static_cast<size_t>(S * ndir * N * H), 0.0);
  std::vector<double> yh(static_cast<size_t>(ndir * N * H), 0.0), yc(yh.size(), 0.0);
  double clip = a.clip;
  auto clipped = [clip](double v) { return clip > 0 ? std::max(-clip, std::min(clip, v)) : v; };
  std::vector<double> h(H), c(H), xw(G * H), hr(G * H), hn(H), rh(H);
  for (int64_t d = 0; d < ndir; ++d) {
    bool rev = a.direction == "reverse" || d == 1;
    const Activation& f = acts[d * per];
    const Activation& gf = per > 1 ? acts[d * per + 1] : f;
    const Activation& hf = per > 2 ? acts[d * per + 2] : f;
    const double* W = w.data() + d * G * H * I;
    const double* R = r.data() + d * G * H * H;
    const double* Wb = bias.data() + d * 2 * G * H;
    const double* Rb = Wb + G * H;
    for (int64_t b = 0; b < N; ++b) {
      std::copy_n(h0.begin() + st_at(d, b), H, h.begin());
      if (lstm) std::copy_n(c0.begin() + st_at(d, b), H, c.begin());
      for (int64_t step = 0; step < lens[b]; ++step) {
        int64_t t = rev ? lens[b] - 1 - step : step;
        const double* xt = x.data() + x_at(t, b);
        for (int64_t k = 0; k < G * H; ++k) {
          double s = Wb[k], q = Rb[k];
          for (int64_t i = 0; i < I; ++i) s += xt[i] * W[k * I + i];
          for (int64_t i = 0; i < H; ++i) q += h[i] * R[k * H + i];
          xw[k] = s;
          hr[k] = q;
        }
        if (cell == Cell::kRnn) {
          for (int64_t j = 0; j < H; ++j) hn[j] = f(clipped(xw[j] + hr[j]));
        } else if (cell == Cell::kGru) {
          // Gate order z, r, h.
          std::vector<double> z(H), rg(H);
          for (int64_t j = 0; j < H; ++j) {
            z[j] = f(clipped(xw[j] + hr[j]));
            rg[j] = f(clipped(xw[H + j] + hr[H + j]));
          }
          if (a.linear_before_reset) {
            for (int64_t j = 0; j < H; ++j) rh[j] = rg[j] * hr[2 * H + j];
          } else {
            for (int64_t j = 0; j < H; ++j) {
              double q = Rb[2 * H + j];
              for (int64_t i = 0; i < H; ++i) q += rg[i] * h[i] * R[(2 * H + j) * H + i];
              rh[j] = q;
            }
          }
          for (int64_t j = 0; j < H; ++j) {
            double ht = gf(clipped(xw[2 * H + j] + rh[j]));
            hn[j] = (1 - z[j]) * ht + z[j] * h[j];
          }
        } else {
          // Gate order i, o, f, c; peepholes P in order i, o, f.
          const double* P = peep.data() + d * 3 * H;
          for (int64_t j = 0; j < H; ++j) {
            double it = f(clipped(xw[j] + hr[j] + P[j] * c[j]));
            double ft = a.input_forget
                            ? 1 - it
                            : f(clipped(xw[2 * H + j] + hr[2 * H + j] + P[2 * H + j] * c[j]));
            double ct = gf(clipped(xw[3 * H + j] + hr[3 * H + j]));
            double cn = ft * c[j] + it * ct;
            double ot = f(clipped(xw[H + j] + hr[H + j] + P[H + j] * cn));
            c[j] = cn;
            hn[j] = ot * hf(cn);
          }
        }
        h = hn;
        std::copy_n(h.begin(), H, y.begin() + y_at(t, d, b));
      }
      std::copy_n(h.begin(), H, yh.begin() + st_at(d, b));
      if (lstm) std::copy_n(c.begin(), H, yc.begin() + st_at(d, b));
    }
  }
  const std::vector<double>* results[3] = {&y, &yh, &yc};
  for (size_t o = 0; o < args.outputs.size() && o < 3; ++o) {
    Tensor& out = args.out(o);
    if (!out.defined()) continue;
    for (int64_t i = 0; i < out.numel(); ++i) out.set_f64(i, (*results[o])[i]);
  }
}

}  // namespace

const OpDef& kiln_op_recurrent() {
  static const OpDef d{"Recurrent", make_attrs_of<RecurrentAttrs>, infer, compute};
  return d;
}

}  // namespace kiln
