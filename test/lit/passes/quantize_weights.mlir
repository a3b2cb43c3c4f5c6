// llm-quantize-weights: round-to-nearest per group, keep rules, exact block bytes, bad options.
// RUN: llmc-opt %s --split-input-file --llm-quantize-weights | FileCheck %s
// RUN: %python %S/Inputs/tiny_llama.py > %t.mlir
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q4 group-size=32 keep=model.embed_tokens.weight=q8,*.down_proj.weight=f16" | FileCheck %s --check-prefix=KEEP
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q4a group-size=64" | FileCheck %s --check-prefix=ASYM
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q8 group-size=128" | FileCheck %s --check-prefix=Q8
// RUN: not llmc-opt %t.mlir --llm-quantize-weights="group-size=48" 2>&1 | FileCheck %s --check-prefix=GROUP
// RUN: not llmc-opt %t.mlir --llm-quantize-weights="keep=oops" 2>&1 | FileCheck %s --check-prefix=RULE
// RUN: not llmc-opt %t.mlir --llm-quantize-weights="format=q3" 2>&1 | FileCheck %s --check-prefix=FMT

// One row of 32: -8..7 then zeros. The extreme (-8) sets d = 1.0 (f16 0x3C00);
// codes are x + 8, and byte i packs element i (low) with element i+16 (high
// nibble, code 8): 0x80 | i.
// CHECK: llm.global @w : !llm.weight<1x32, q4<g32>> = dense_resource<w.q4g32> : tensor<18xi8>
// CHECK: llm.weight @w : <1x32, q4<g32>>
// CHECK: w.q4g32: "0x40000000003C808182838485868788898A8B8C8D8E8F"
llm.global @w : !llm.weight<1x32, f32> = dense<[[-8.0, -7.0, -6.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<1x32xf32>
func.func @f(%x: tensor<?x32xf32>) -> tensor<?x1xf32> {
  %w = llm.weight @w : !llm.weight<1x32, f32>
  %y = llm.linear %x, %w : tensor<?x32xf32>, !llm.weight<1x32, f32> -> tensor<?x1xf32>
  return %y : tensor<?x1xf32>
}

// KEEP-DAG: llm.global @model.embed_tokens.weight : !llm.weight<16x64, q8<g32>> = dense_resource<{{.+}}> : tensor<1088xi8>
// KEEP-DAG: llm.global @model.layers.0.input_layernorm.weight : !llm.weight<64, f32> = dense<
// KEEP-DAG: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, q4<g32>>
// KEEP-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, f16>
// Rows of 96 at group 64 pad to 2 groups: 96 rows x 2 x (4 + 32) bytes.
// ASYM-DAG: llm.global @model.layers.0.mlp.gate_proj.weight : !llm.weight<96x64, q4<g64, asym>> = dense_resource<{{.+}}> : tensor<3456xi8>
// ASYM-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, q4<g64, asym>> = dense_resource<{{.+}}> : tensor<4608xi8>
// Q8-DAG: llm.global @model.layers.0.self_attn.k_proj.weight : !llm.weight<32x64, q8<g128>> = dense_resource<{{.+}}> : tensor<4160xi8>
// GROUP: group-size must be a positive multiple of 32, got 48
// RULE: bad keep rule 'oops': expected PATTERN=FORMAT
// FMT: unknown format 'q3'
