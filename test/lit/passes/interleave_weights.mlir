// llm-interleave-weights: q8/q4 matrices stored 8 rows interleaved (scales, then codes), the tail row by row; only matrix-product weights.
// RUN: llmc-opt %s --llm-quantize-weights="format=q4 group-size=32" --llm-interleave-weights | FileCheck %s
// RUN: llmc-opt %s --llm-quantize-weights="format=q4 group-size=32" | FileCheck %s --check-prefix=ROWS
// RUN: %python %S/Inputs/tiny_llama.py > %t.mlir
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q4 group-size=32 keep=model.embed_tokens.weight=q8" --llm-fuse-projections --llm-interleave-weights | FileCheck %s --check-prefix=MODEL
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q4a group-size=32" --llm-interleave-weights | FileCheck %s --check-prefix=ASYM
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q8 group-size=64" --llm-interleave-weights | FileCheck %s --check-prefix=Q8
// RUN: llmc-opt %t.mlir --llm-convert-weight-format="format=f16" --llm-fuse-projections --llm-interleave-weights | FileCheck %s --check-prefix=F16
// llmc compile interleaves by default; the executable computes what the
// row-by-row one does (the same products, summed in another order).
// RUN: llmc compile %t.mlir --q4 -o %t.x8 --quiet
// RUN: llmc compile %t.mlir --q4 --no-interleave -o %t.rows --quiet
// RUN: llmc inspect %t.x8 | FileCheck %s --check-prefix=INSPECT
// RUN: llmc inspect %t.rows | FileCheck %s --check-prefix=INSPECT-ROWS
// RUN: %t.x8 --prompt-ids 1,5,9,3,12,7 --logits > %t.x8.txt
// RUN: %t.rows --prompt-ids 1,5,9,3,12,7 --logits > %t.rows.txt
// RUN: %python %e2e/compare_logits.py %t.x8.txt %t.rows.txt 1e-4
// RUN: llmc compile %t.mlir --f16 -o %t.f16 --quiet
// RUN: llmc compile %t.mlir --f16 --no-interleave -o %t.f16rows --quiet
// RUN: %t.f16 --prompt-ids 1,5,9,3,12,7 --logits > %t.f16.txt
// RUN: %t.f16rows --prompt-ids 1,5,9,3,12,7 --logits > %t.f16rows.txt
// RUN: %python %e2e/compare_logits.py %t.f16.txt %t.f16rows.txt 1e-4
// An embedding table stored interleaved (only a hand-written module can
// have one) is refused with one line, and nothing is written.
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q8 group-size=32" | sed -e 's/16x64, q8<g32>/16x64, q8x8<g32>/g' > %t.bademb.mlir
// RUN: not llmc compile %t.bademb.mlir -o %t.bademb 2>&1 | FileCheck %s --check-prefix=BADEMB
// RUN: not ls %t.bademb
// BADEMB: error: the module's program is inconsistent: op 0 (embedding): its table cannot be stored with rows interleaved
// RUN: llmc-run --weights %t.x8 --prompt-ids 1,5,9,3,12,7 --logits > %t.eval.txt
// RUN: %python %e2e/compare_logits.py %t.x8.txt %t.eval.txt 1e-5

// Nine rows of 32: row i is -8·2^i then zeros, so its scale is 2^i (f16
// 0x3C00 + i·0x0400, little-endian) and its 16 code bytes are 0x80 then
// fifteen 0x88. Interleaved: the 8 scales of rows 0-7, code bytes 0-7 of
// rows 0-7, code bytes 8-15 of rows 0-7, then row 8 as it was (scale,
// codes).
// CHECK: llm.global @w : !llm.weight<9x32, q4x8<g32>> = dense_resource<w.q4x8g32> : tensor<162xi8>
// CHECK: llm.weight @w : <9x32, q4x8<g32>>
// CHECK: w.q4x8g32: "0x40000000003C004000440048004C0050005400588088888888888888808888888888888880888888888888888088888888888888808888888888888880888888888888888088888888888888808888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888888005C80888888888888888888888888888888"
// ROWS: w.q4g32: "0x40000000003C80888888888888888888888888888888004080888888888888888888888888888888004480888888888888888888888888888888004880888888888888888888888888888888004C80888888888888888888888888888888005080888888888888888888888888888888005480888888888888888888888888888888005880888888888888888888888888888888005C80888888888888888888888888888888"
llm.global @w : !llm.weight<9x32, f32> = dense<[[-8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-16.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-32.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-64.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-128.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-256.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-512.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-1024.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [-2048.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<9x32xf32>
func.func @f(%x: tensor<?x32xf32>) -> tensor<?x9xf32> {
  %w = llm.weight @w : !llm.weight<9x32, f32>
  %y = llm.linear %x, %w : tensor<?x32xf32>, !llm.weight<9x32, f32> -> tensor<?x9xf32>
  return %y : tensor<?x9xf32>
}

// The embedding table is read a row at a time and stays row by row; the
// projections (fused or not) are interleaved; norms stay f32.
// MODEL-DAG: llm.global @model.embed_tokens.weight : !llm.weight<16x64, q8<g32>>
// MODEL-DAG: llm.global @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, q4x8<g32>>
// MODEL-DAG: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<192x64, q4x8<g32>>
// MODEL-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, q4x8<g32>>
// MODEL-DAG: llm.global @model.layers.0.input_layernorm.weight : !llm.weight<64, f32>
// Asymmetric q4 has no interleaved kernel: it stays row by row.
// ASYM-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, q4<g32, asym>>
// Q8-DAG: llm.global @model.layers.0.self_attn.k_proj.weight : !llm.weight<32x64, q8x8<g64>>
// INSPECT: model.layers.0.mlp.gate_up_proj.weight q4x8<g32> 192x64
// INSPECT-ROWS: model.layers.0.mlp.gate_up_proj.weight q4<g32> 192x64
// f16 matrices go 16 rows a group, column by column; the table stays f16.
// F16-DAG: llm.global @model.embed_tokens.weight : !llm.weight<16x64, f16>
// F16-DAG: llm.global @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, f16x16>
// F16-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, f16x16>
