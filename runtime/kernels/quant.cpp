// Round-to-nearest quantization of weight rows and activations, and dequantization.
#include "runtime/kernels/quant.h"

#include "runtime/kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace llmc::kernels {

namespace {

void packNibbles(const uint8_t *n, int64_t g, uint8_t *qs) {
  for (int64_t s = 0; s < g / kQuantSubBlock; ++s) {
    for (int i = 0; i < 16; ++i) {
      qs[s * 16 + i] = static_cast<uint8_t>(n[s * 32 + i] | (n[s * 32 + i + 16] << 4));
    }
  }
}

void unpackNibbles(const uint8_t *qs, int64_t g, uint8_t *n) {
  for (int64_t s = 0; s < g / kQuantSubBlock; ++s) {
    for (int i = 0; i < 16; ++i) {
      n[s * 32 + i] = qs[s * 16 + i] & 0x0F;
      n[s * 32 + i + 16] = qs[s * 16 + i] >> 4;
    }
  }
}

} // namespace

void quantizeRow(const float *x, int64_t k, int32_t format, int64_t group,
                 bool asym, uint8_t *out) {
  const size_t blockBytes = quantBlockBytes(format, group, asym);
  std::vector<float> buf(static_cast<size_t>(group));
  std::vector<uint8_t> nib(static_cast<size_t>(group));
  for (int64_t g0 = 0; g0 < k; g0 += group) {
    int64_t len = std::min(group, k - g0);
    std::fill(buf.begin(), buf.end(), 0.0f);
    std::copy(x + g0, x + g0 + len, buf.begin());
    uint8_t *blk = out + (g0 / group) * blockBytes;
    if (format == 3) { // q8
      float amax = 0.0f;
      for (float v : buf) {
        amax = std::max(amax, std::fabs(v));
      }
      float d = amax / 127.0f;
      uint16_t dh = floatToHalf(d);
      float dq = halfToFloat(dh);
      float inv = dq != 0.0f ? 1.0f / dq : 0.0f;
      std::memcpy(blk, &dh, 2);
      int8_t *q = reinterpret_cast<int8_t *>(blk + 2);
      for (int64_t i = 0; i < group; ++i) {
        q[i] = static_cast<int8_t>(
            std::clamp(std::nearbyint(buf[i] * inv), -127.0f, 127.0f));
      }
    } else if (!asym) { // q4 symmetric: the extreme value maps to -8
      float amax = 0.0f, extreme = 0.0f;
      for (float v : buf) {
        if (std::fabs(v) > amax) {
          amax = std::fabs(v);
          extreme = v;
        }
      }
      float d = extreme / -8.0f;
      uint16_t dh = floatToHalf(d);
      float dq = halfToFloat(dh);
      float inv = dq != 0.0f ? 1.0f / dq : 0.0f;
      std::memcpy(blk, &dh, 2);
      for (int64_t i = 0; i < group; ++i) {
        nib[i] = static_cast<uint8_t>(
            std::clamp(std::nearbyint(buf[i] * inv) + 8.0f, 0.0f, 15.0f));
      }
      packNibbles(nib.data(), group, blk + 2);
    } else { // q4 asymmetric over [min, max] of the real elements
      float mn = x[g0], mx = x[g0];
      for (int64_t i = 0; i < len; ++i) {
        mn = std::min(mn, x[g0 + i]);
        mx = std::max(mx, x[g0 + i]);
      }
      float d = (mx - mn) / 15.0f;
      uint16_t dh = floatToHalf(d), mh = floatToHalf(mn);
      float dq = halfToFloat(dh), mq = halfToFloat(mh);
      float inv = dq != 0.0f ? 1.0f / dq : 0.0f;
      std::memcpy(blk, &dh, 2);
      std::memcpy(blk + 2, &mh, 2);
      for (int64_t i = 0; i < group; ++i) {
        nib[i] = i < len ? static_cast<uint8_t>(std::clamp(
                               std::nearbyint((buf[i] - mq) * inv), 0.0f, 15.0f))
                         : 0;
      }
      packNibbles(nib.data(), group, blk + 4);
    }
  }
}

void dequantizeRow(const uint8_t *row, int64_t k, int32_t format, int64_t group,
                   bool asym, float *out) {
  const size_t blockBytes = quantBlockBytes(format, group, asym);
  std::vector<uint8_t> nib(static_cast<size_t>(group));
  for (int64_t g0 = 0; g0 < k; g0 += group) {
    int64_t len = std::min(group, k - g0);
    const uint8_t *blk = row + (g0 / group) * blockBytes;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    float d = halfToFloat(dh);
    if (format == 3) {
      const int8_t *q = reinterpret_cast<const int8_t *>(blk + 2);
      for (int64_t i = 0; i < len; ++i) {
        out[g0 + i] = d * q[i];
      }
    } else if (!asym) {
      unpackNibbles(blk + 2, group, nib.data());
      for (int64_t i = 0; i < len; ++i) {
        out[g0 + i] = d * (static_cast<int>(nib[i]) - 8);
      }
    } else {
      uint16_t mh;
      std::memcpy(&mh, blk + 2, 2);
      float m = halfToFloat(mh);
      unpackNibbles(blk + 4, group, nib.data());
      for (int64_t i = 0; i < len; ++i) {
        out[g0 + i] = d * nib[i] + m;
      }
    }
  }
}

void quantizeActivations(const float *x, int64_t k, int64_t blocks,
                         ActBlock *out) {
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t len = std::clamp<int64_t>(k - b * kQuantSubBlock, 0, kQuantSubBlock);
    const float *xb = x + b * kQuantSubBlock;
    float amax = 0.0f;
    for (int64_t i = 0; i < len; ++i) {
      amax = std::max(amax, std::fabs(xb[i]));
    }
    float d = amax / 127.0f;
    float inv = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int64_t i = 0; i < kQuantSubBlock; ++i) {
      int q = i < len ? static_cast<int>(std::nearbyint(xb[i] * inv)) : 0;
      out[b].q[i] = static_cast<int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].sum = d * static_cast<float>(sum);
  }
}

} // namespace llmc::kernels
