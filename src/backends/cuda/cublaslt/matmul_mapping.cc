#include "backends/cuda/cublaslt/matmul_mapping.h"

#include <algorithm>
#include <climits>

#include "common/error.h"

namespace kiln::cuda {

namespace {

// More calls than this means a broadcasting pattern no model uses; the host fallback takes it.
constexpr int64_t kMaxCalls = 1 << 16;

MatMulMapping reject(std::string why) {
  MatMulMapping m;
  m.why = std::move(why);
  return m;
}

}  // namespace

MatMulMapping map_matmul(const MatMulAttrs& at, const Dims& a, const Dims& b, const Dims& y) {
  if (a.empty() || b.empty()) return reject("0-D operand");
  const bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  const bool ta = at.trans_a && !a_vec, tb = at.trans_b && !b_vec;
  int64_t m, k, kb, n;
  if (a_vec) {
    m = 1;
    k = a[0];
  } else {
    const int64_t r = a[a.size() - 2], c = a.back();
    m = ta ? c : r;
    k = ta ? r : c;
  }
  if (b_vec) {
    kb = b[0];
    n = 1;
  } else {
    const int64_t r = b[b.size() - 2], c = b.back();
    kb = tb ? c : r;
    n = tb ? r : c;
  }
  if (k != kb) return reject(cat("inner dimensions differ (", k, " vs ", kb, ")"));
  const Dims ab = a_vec ? Dims{} : Dims(a.begin(), a.end() - 2);
  const Dims bb = b_vec ? Dims{} : Dims(b.begin(), b.end() - 2);
  const size_t r = std::max(ab.size(), bb.size());
  Dims d(r), pa(r, 1), pb(r, 1);  // output batch; operands' batches right-aligned, padded with 1
  std::copy(ab.begin(), ab.end(), pa.begin() + (r - ab.size()));
  std::copy(bb.begin(), bb.end(), pb.begin() + (r - bb.size()));
  for (size_t i = 0; i < r; ++i) {
    if (pa[i] != pb[i] && pa[i] != 1 && pb[i] != 1) return reject("batch dims do not broadcast");
    d[i] = pa[i] == 1 ? pb[i] : pa[i];
  }
  Dims want = d;
  if (!a_vec) want.push_back(m);
  if (!b_vec) want.push_back(n);
  if (want != y)
    return reject(cat("output ", dims_to_string(y), " is not the expected ", dims_to_string(want)));

  MatMulMapping mp;
  mp.m = m;
  mp.n = n;
  mp.k = k;
  mp.trans_a = ta;
  mp.trans_b = tb;
  if (dims_volume(y) == 0) {
    mp.empty = true;
    mp.ok = true;
    return mp;
  }
  if (k == 0) {
    mp.zero = true;
    mp.ok = true;
    return mp;
  }
  const int64_t ma = m * k, mb = k * n, my = m * n;  // elements per matrix
  const int64_t nb = dims_volume(d);
  // cuBLASLt's kernels index matrices with 32-bit rows and columns.
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) return reject("a matrix dim of 2^31 or more");
  bool b_broadcast = true, a_dense = true;
  for (size_t i = 0; i < r; ++i) {
    b_broadcast &= pb[i] == 1;
    a_dense &= pa[i] == d[i];
  }
  if (b_broadcast && a_dense && !ta && !a_vec && m * nb <= INT_MAX) {
    // [batch..., m, k] @ [k, n]: the batches of A are consecutive rows of one [batch * m, k].
    mp.m = m * nb;
    mp.batch = 1;
    mp.stride_a = mp.m * k;
    mp.stride_b = 0;
    mp.stride_y = mp.m * n;
    mp.a_offset = {0};
    mp.b_offset = {0};
    mp.y_offset = {0};
    mp.ok = true;
    return mp;
  }
  // The inner run of batch dims: along each, A is dense throughout or broadcast throughout, and so
  // is B. Dims of size 1 fit any run.
  int ga = -1, gb = -1;
  size_t split = r;
  for (size_t i = r; i-- > 0;) {
    if (d[i] == 1) {
      split = i;
      continue;
    }
    const int fa = pa[i] == 1 ? 0 : 1, fb = pb[i] == 1 ? 0 : 1;
    if (ga < 0) {
      ga = fa;
      gb = fb;
    } else if (fa != ga || fb != gb) {
      break;
    }
    split = i;
  }
  int64_t inner = 1, outer = 1;
  for (size_t i = split; i < r; ++i) inner *= d[i];
  for (size_t i = 0; i < split; ++i) outer *= d[i];
  if (inner > INT_MAX) return reject("more than 2^31 batch entries in one call");
  if (outer > kMaxCalls) return reject(cat("the broadcast pattern needs ", outer, " calls"));
  mp.batch = inner;
  mp.stride_a = ga == 0 ? 0 : ma;
  mp.stride_b = gb == 0 ? 0 : mb;
  mp.stride_y = my;
  // Batch strides (in matrices) of A and B per output batch dim; 0 where broadcast.
  std::vector<int64_t> sa(r, 0), sb(r, 0);
  int64_t acc_a = 1, acc_b = 1;
  for (size_t i = r; i-- > 0;) {
    sa[i] = pa[i] == 1 ? 0 : acc_a;
    sb[i] = pb[i] == 1 ? 0 : acc_b;
    acc_a *= pa[i];
    acc_b *= pb[i];
  }
  mp.a_offset.resize(outer);
  mp.b_offset.resize(outer);
  mp.y_offset.resize(outer);
  for (int64_t o = 0; o < outer; ++o) {
    int64_t rest = o, ia = 0, ib = 0;
    for (size_t i = split; i-- > 0;) {
      const int64_t idx = rest % d[i];
      rest /= d[i];
      ia += idx * sa[i];
      ib += idx * sb[i];
    }
    mp.a_offset[o] = ia * ma;
    mp.b_offset[o] = ib * mb;
    mp.y_offset[o] = o * inner * my;
  }
  mp.ok = true;
  return mp;
}

}  // namespace kiln::cuda
