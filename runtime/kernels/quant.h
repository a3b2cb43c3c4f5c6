// Block-quantized weight formats (q8, q4) and the int8 activation blocks their kernels use.
//
// A weight row of K elements is cut into ceil(K / G) groups of G elements
// (G a multiple of 32; the last group zero-padded). Each group is one block:
//
//   q8<gG>:        [f16 scale d][G x int8 q]                  value = d * q
//   q4<gG>:        [f16 scale d][G/2 bytes]                   value = d * (n - 8)
//   q4<gG, asym>:  [f16 scale d][f16 min m][G/2 bytes]        value = d * n + m
//
// The q4 nibbles of a group come in sub-blocks of 32 elements, 16 bytes each:
// byte i of sub-block s holds element 32s+i in its low nibble and element
// 32s+i+16 in its high nibble, so one 128-bit load unpacks 32 elements.
// Blocks are packed (no alignment padding): a q8 g32 block is 34 bytes, as in
// ggml's Q8_0, and a q4 g32 block 18 bytes, as in Q4_0.
#ifndef LLMC_RUNTIME_KERNELS_QUANT_H
#define LLMC_RUNTIME_KERNELS_QUANT_H

#include "llmc/program.h"

#include <cstddef>
#include <cstdint>

namespace llmc::kernels {

constexpr int kQuantSubBlock = 32;

struct BlockQ8G32 {
  uint16_t d;
  int8_t q[32];
};
struct BlockQ4G32 {
  uint16_t d;
  uint8_t qs[16];
};
struct BlockQ4AsymG32 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ8G32) == 34, "q8 g32 block is 2 + 32 bytes");
static_assert(sizeof(BlockQ4G32) == 18, "q4 g32 block is 2 + 16 bytes");
static_assert(sizeof(BlockQ4AsymG32) == 20, "q4 asym g32 block is 4 + 16 bytes");

/// 2:4 sparse rows: each block covers 32 columns, 8 runs of 4; a run keeps
/// 2 values (in column order) and their positions 0..3 (2 bits each; run
/// g's are the low (g even) or high nibble of idx[g / 2], first position in
/// the nibble's low 2 bits: lane L of the block's 16 values has its
/// position at bit 2L of the little-endian idx word). A row of K columns is
/// ceil(K / 32) blocks; padding columns hold zeros. The 16 values are f16
/// (s24), or int8 / int4 codes under one f16 scale d per block (s24q8:
/// value d * q; s24q4: value d * (n - 8), qs[i] holding value 2i in its
/// low nibble and 2i + 1 in its high one).
struct BlockS24 {
  uint16_t v[16];
  uint8_t idx[4];
};
struct BlockS24Q8 {
  uint16_t d;
  int8_t q[16];
  uint8_t idx[4];
};
struct BlockS24Q4 {
  uint16_t d;
  uint8_t qs[8];
  uint8_t idx[4];
};
static_assert(sizeof(BlockS24) == 36, "2:4 block is 32 + 4 bytes per 32 columns");
static_assert(sizeof(BlockS24Q8) == 22, "2:4 q8 block is 2 + 16 + 4 bytes");
static_assert(sizeof(BlockS24Q4) == 14, "2:4 q4 block is 2 + 8 + 4 bytes");
constexpr int kS24Columns = 32;

inline bool isSparseFormat(int32_t format) {
  return format == LLMC_FORMAT_S24 || format == LLMC_FORMAT_S24Q8 ||
         format == LLMC_FORMAT_S24Q4;
}
/// Bytes of one block of 32 columns of a 2:4 format.
inline size_t sparseBlockBytes(int32_t format) {
  return format == LLMC_FORMAT_S24Q8   ? sizeof(BlockS24Q8)
         : format == LLMC_FORMAT_S24Q4 ? sizeof(BlockS24Q4)
                                       : sizeof(BlockS24);
}
/// Bytes of one 2:4 row of `k` columns.
inline size_t sparseRowBytes(int32_t format, int64_t k) {
  return static_cast<size_t>((k + kS24Columns - 1) / kS24Columns) *
         sparseBlockBytes(format);
}

/// Packs a row of `k` floats with at most 2 non-zeros in every run of 4
/// (the quantized formats round the kept values to nearest, per block);
/// returns false (and writes nothing useful) when a run has more.
bool packSparseRow(const float *x, int64_t k, int32_t format, uint8_t *out);
/// Expands a 2:4 row into `k` floats.
void unpackSparseRow(const uint8_t *row, int64_t k, int32_t format, float *out);
/// Value `lane` (0..15) of a 2:4 block, and the column it sits in (0..31).
float sparseValue(const uint8_t *block, int32_t format, int lane);
int sparseColumn(const uint8_t *block, int32_t format, int lane);

/// q8x8 / q4x8: symmetric q8 / q4 rows interleaved in groups of 8. Each
/// group of 8 rows holds, per group of G columns, the 8 rows' f16 scales
/// and then, per 32-column sub-block, the 8 rows' code bytes of that
/// sub-block (q8: 32 bytes a row, q4: 16, nibbles as in q4) in 8-byte
/// pieces: piece h of rows 0..7, then piece h + 1 of rows 0..7, and so on.
/// So 64 consecutive bytes hold the same 8 codes (q8; q4: 16) of all 8
/// rows, which one multiply-add instruction takes against one broadcast
/// of 8 activation bytes. 8 blocks' bytes, reordered; rows past the last
/// multiple of 8 follow in the plain layout. At G = 32 a group of 8 rows is
/// one of these per 32 columns:
struct BlockQ8X8G32 {
  uint16_t d[8];
  int8_t q[4][8][8]; // [piece][row][byte]: row r's code 8h + b at q[h][r][b]
};
struct BlockQ4X8G32 {
  uint16_t d[8];
  uint8_t qs[2][8][8]; // [piece][row][byte]
};
constexpr int kInterleavePiece = 8;
static_assert(sizeof(BlockQ8X8G32) == 8 * sizeof(BlockQ8G32),
              "q8x8 holds 8 q8 blocks' bytes");
static_assert(sizeof(BlockQ4X8G32) == 8 * sizeof(BlockQ4G32),
              "q4x8 holds 8 q4 blocks' bytes");
constexpr int kInterleaveRows = 8;

/// f16x16: f16 rows in groups of 16, each group stored column by column
/// (element (r, c) of the group at [c * 16 + r % 16]), so one 32-byte load
/// brings column c of 16 rows. Rows past the last multiple of 16 follow
/// row-major.
constexpr int kF16GroupRows = 16;

inline bool isInterleavedFormat(int32_t format) {
  return format == LLMC_FORMAT_Q8X8 || format == LLMC_FORMAT_Q4X8 ||
         format == LLMC_FORMAT_F16X16;
}
/// The row-by-row format whose bytes an interleaved one reorders (q8x8 ->
/// q8, q4x8 -> q4); other formats map to themselves.
inline int32_t rowFormat(int32_t format) {
  return format == LLMC_FORMAT_Q8X8     ? LLMC_FORMAT_Q8
         : format == LLMC_FORMAT_Q4X8   ? LLMC_FORMAT_Q4
         : format == LLMC_FORMAT_F16X16 ? LLMC_FORMAT_F16
                                        : format;
}

/// Bytes of one block of `group` elements.
inline size_t quantBlockBytes(int32_t format, int64_t group, bool asym) {
  format = rowFormat(format);
  return format == LLMC_FORMAT_Q8 ? 2 + static_cast<size_t>(group)
                            : (asym ? 4 : 2) + static_cast<size_t>(group) / 2;
}

/// Bytes of one row of `k` elements.
inline size_t quantRowBytes(int32_t format, int64_t k, int64_t group, bool asym) {
  return static_cast<size_t>((k + group - 1) / group) *
         quantBlockBytes(format, group, asym);
}

/// The scale (and q4-asym minimum) of one group, already rounded to f16 as
/// stored. Symmetric q8: d = max|x| / 127. Symmetric q4: the extreme value
/// maps to -8 (d = extreme / -8), as ggml's Q4_0. Asymmetric q4: [min, max]
/// maps onto 0..15.
struct GroupParams {
  uint16_t dBits = 0, mBits = 0;
  float d = 0.0f, m = 0.0f;
};
GroupParams groupParams(const float *x, int64_t len, int32_t format, bool asym);

/// The stored code of `v` in a group: q8 in [-127, 127], q4 in [0, 15].
int quantCode(float v, const GroupParams &p, int32_t format, bool asym);
/// The value a code stands for.
float dequantCode(int code, const GroupParams &p, int32_t format, bool asym);
/// The code a row's padding takes past its last element: the code of 0.0
/// (symmetric), or code 0 (asymmetric: the padded activations are zero, so
/// its value never counts).
inline int paddingCode(int32_t format, bool asym) {
  return format == LLMC_FORMAT_Q8 || asym ? 0 : 8;
}

/// Writes one block from its parameters and `group` codes.
void packGroup(const int *codes, int64_t group, const GroupParams &p,
               int32_t format, bool asym, uint8_t *block);

/// Quantizes one row of `k` floats by round-to-nearest into `out`
/// (quantRowBytes bytes): symmetric scales d = max|x| / 127 (q8) or
/// max|x| / 8 with the sign of the extreme value (q4, as ggml's Q4_0);
/// asymmetric q4 maps [min, max] onto 0..15.
void quantizeRow(const float *x, int64_t k, int32_t format, int64_t group,
                 bool asym, uint8_t *out);

/// Dequantizes one row (the inverse of quantizeRow's storage).
void dequantizeRow(const uint8_t *row, int64_t k, int32_t format,
                   int64_t group, bool asym, float *out);

/// Reorders `rows` q8 / q4 (symmetric) rows of `k` columns into the
/// interleaved layout of `interleaved` (q8x8 / q4x8); `out` does not alias
/// `in`. deinterleaveRow copies row `r` back out in the row layout
/// (quantRowBytes bytes).
void interleaveRows(const uint8_t *in, int64_t rows, int64_t k,
                    int32_t interleaved, int64_t group, uint8_t *out);
void deinterleaveRow(const uint8_t *w, int64_t rows, int64_t k,
                     int32_t interleaved, int64_t group, int64_t r,
                     uint8_t *out);

/// Reorders `rows` f16 rows of `k` columns into f16x16 (`out` does not
/// alias `in`); f16x16Row copies row `r` back out.
void interleaveF16Rows(const uint16_t *in, int64_t rows, int64_t k,
                       uint16_t *out);
void f16x16Row(const uint16_t *w, int64_t rows, int64_t k, int64_t r,
               uint16_t *out);

/// Activations quantized for the integer dot products: per 32 elements an
/// int8 block with its float scale and the scaled sum of its values.
struct ActBlock {
  float d;
  float sum; // d * sum(q), for zero-point and offset terms
  int8_t q[32];
};

/// Quantizes a row of `k` activations into `blocks` blocks of 32 (blocks *
/// 32 >= k; the rest is zero padding, matching padded weight groups).
void quantizeActivations(const float *x, int64_t k, int64_t blocks,
                         ActBlock *out);

} // namespace llmc::kernels

#endif // LLMC_RUNTIME_KERNELS_QUANT_H
