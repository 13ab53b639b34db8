// float16, bfloat16 and fp8 conversions (round to nearest even), host side.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace kiln {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline uint16_t float_to_half_bits(float f) {
  uint32_t x = f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff);
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
  int32_t e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;  // may carry into exponent: ok
  return static_cast<uint16_t>(sign | half);
}

inline float half_bits_to_float(uint16_t h) {
  uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x = f32_bits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40u);
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}
inline float bf16_bits_to_float(uint16_t b) { return bits_f32(static_cast<uint32_t>(b) << 16); }

// float8 E4M3FN (1 sign, 4 exponent bits of bias 7, 3 mantissa bits; no infinities; 0x7f/0xff
// NaN; largest finite 448; subnormals down to 2^-9), as ONNX and Hopper's tensor cores define
// it. Rounds to nearest even; out of range saturates to +-448 (`saturate`, ONNX's default for
// Cast and QuantizeLinear, also for infinities) or becomes NaN.
constexpr double kFloat8E4M3Max = 448.0;

inline uint8_t float_to_e4m3fn_bits(double v, bool saturate = true) {
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  if (std::isnan(v)) return 0x7f;
  const double a = std::fabs(v);
  if (std::isinf(a)) return saturate ? static_cast<uint8_t>(sign | 0x7e) : 0x7f;
  if (a == 0) return sign;
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1): the leading bit is 2^(e-1)
  const int exp = e - 1;
  if (exp < -6) {
    // Subnormal: units of 2^-9 (a result of 8 units is the smallest normal, whose bits are 8).
    const double q = std::nearbyint(std::ldexp(a, 9));
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(q));
  }
  double q = std::nearbyint((std::ldexp(a, -exp) - 1.0) * 8.0);  // mantissa in eighths
  int biased = exp + 7;
  if (q >= 8) {
    q = 0;
    ++biased;
  }
  if (biased > 15 || (biased == 15 && q > 6))
    return saturate ? static_cast<uint8_t>(sign | 0x7e) : 0x7f;
  return static_cast<uint8_t>(sign | (biased << 3) | static_cast<int>(q));
}

inline float e4m3fn_bits_to_float(uint8_t b) {
  const int exp = (b >> 3) & 0xf, mant = b & 0x7;
  if (exp == 15 && mant == 7) return std::nanf("");
  const float mag = exp == 0 ? std::ldexp(static_cast<float>(mant), -9)
                             : std::ldexp(1.0f + mant / 8.0f, exp - 7);
  return (b & 0x80) ? -mag : mag;
}

// Storage types, so templates can dispatch on them.
struct Half { uint16_t bits; };
struct BFloat16 { uint16_t bits; };

inline float to_float(Half h) { return half_bits_to_float(h.bits); }
inline float to_float(BFloat16 h) { return bf16_bits_to_float(h.bits); }

}  // namespace kiln
