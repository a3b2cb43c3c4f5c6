// Host-side filling of --random-weights tensors in the artifact's layout (the recipe is synth.h's).
#include "runtime/core/synth_fill.h"

#include "runtime/core/synth.h"
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace llmc::synth {

namespace {
uint16_t toBf16(float v) { // round to nearest even, as the GPU's conversion
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

/// Rows r0..r0+n-1 of a q8 / q4 tensor, row by row, into dst.
void fillQuantRows(uint64_t index, int32_t format, int32_t group, bool asym,
                   int64_t cols, int64_t r0, int64_t n, uint8_t *dst) {
  const bool q8 = format == LLMC_FORMAT_Q8;
  const int64_t groups = (cols + group - 1) / group;
  const size_t block = kernels::quantBlockBytes(format, group, asym);
  const uint16_t d = kernels::floatToHalf(quantScale(q8, cols));
  const uint16_t m = kernels::floatToHalf(-8.0f * kernels::halfToFloat(d));
  for (int64_t r = r0; r < r0 + n; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      uint8_t *b = dst + ((r - r0) * groups + g) * block;
      std::memcpy(b, &d, 2);
      uint8_t *q = b + 2;
      if (!q8 && asym) {
        std::memcpy(b + 2, &m, 2);
        q = b + 4;
      }
      const int64_t c0 = g * group;
      if (q8) {
        for (int64_t i = 0; i < group; ++i) {
          q[i] = static_cast<uint8_t>(static_cast<int8_t>(
              quantCode(index, true, false, cols, r, c0 + i)));
        }
      } else {
        // Sub-blocks of 32: byte i holds element i (low) and i + 16 (high).
        for (int64_t s = 0; s < group / 32; ++s) {
          for (int64_t i = 0; i < 16; ++i) {
            int lo = quantCode(index, false, asym, cols, r, c0 + 32 * s + i);
            int hi = quantCode(index, false, asym, cols, r, c0 + 32 * s + 16 + i);
            q[16 * s + i] = static_cast<uint8_t>(lo | (hi << 4));
          }
        }
      }
    }
  }
}

} // namespace

void fillTensor(uint64_t index, int32_t format, int32_t group, bool asym,
                const std::vector<int64_t> &shape, uint8_t *dst) {
  const int rank = static_cast<int>(shape.size());
  const int64_t cols = shape.back();
  int64_t rows = 1;
  for (int i = 0; i + 1 < rank; ++i) {
    rows *= shape[i];
  }
  if (kernels::isSparseFormat(format)) {
    // The float recipe with the two smallest of every 4 set to zero.
    std::vector<float> row(static_cast<size_t>(cols));
    const size_t rowBytes = kernels::sparseRowBytes(format, cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        row[c] = floatValue(index, rank, cols, r, c);
      }
      for (int64_t c0 = 0; c0 + 4 <= cols; c0 += 4) {
        for (int drop = 0; drop < 2; ++drop) {
          int64_t lo = -1;
          for (int64_t c = c0; c < c0 + 4; ++c) {
            if (row[c] != 0.0f &&
                (lo < 0 || std::fabs(row[c]) < std::fabs(row[lo]))) {
              lo = c;
            }
          }
          if (lo >= 0) {
            row[lo] = 0.0f;
          }
        }
      }
      for (int64_t c = cols - cols % 4; c < cols; ++c) {
        row[c] = 0.0f; // a partial run keeps nothing
      }
      kernels::packSparseRow(row.data(), cols, format, dst + r * rowBytes);
    }
    return;
  }
  if (format == LLMC_FORMAT_Q8 || format == LLMC_FORMAT_Q4) {
    fillQuantRows(index, format, group, asym, cols, 0, rows, dst);
    return;
  }
  if (format == LLMC_FORMAT_F16X16) {
    // The f16 recipe, 16 rows at a time, column by column.
    const int64_t g = kernels::kF16GroupRows;
    std::vector<uint16_t> rowsBuf(static_cast<size_t>(g * cols));
    for (int64_t r0 = 0; r0 < rows; r0 += g) {
      const int64_t n = std::min<int64_t>(g, rows - r0);
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          rowsBuf[r * cols + c] =
              kernels::floatToHalf(floatValue(index, rank, cols, r0 + r, c));
        }
      }
      kernels::interleaveF16Rows(rowsBuf.data(), n, cols,
                                 reinterpret_cast<uint16_t *>(dst) + r0 * cols);
    }
    return;
  }
  if (kernels::isInterleavedFormat(format)) {
    // The q8 / q4 rows, 8 at a time, in the interleaved order.
    const int32_t base = kernels::rowFormat(format);
    const size_t rowBytes = kernels::quantRowBytes(base, cols, group, false);
    std::vector<uint8_t> rowsBuf(kernels::kInterleaveRows * rowBytes);
    for (int64_t r0 = 0; r0 < rows; r0 += kernels::kInterleaveRows) {
      const int64_t n = std::min<int64_t>(kernels::kInterleaveRows, rows - r0);
      fillQuantRows(index, base, group, false, cols, r0, n, rowsBuf.data());
      kernels::interleaveRows(rowsBuf.data(), n, cols, format, group,
                              dst + r0 * rowBytes);
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      float v = floatValue(index, rank, cols, r, c);
      size_t at = static_cast<size_t>(r * cols + c);
      if (format == LLMC_FORMAT_F32) {
        std::memcpy(dst + 4 * at, &v, 4);
      } else {
        uint16_t h = format == LLMC_FORMAT_F16 ? kernels::floatToHalf(v)
                                               : toBf16(v);
        std::memcpy(dst + 2 * at, &h, 2);
      }
    }
  }
}

} // namespace llmc::synth
