// llm-gptq on a fixed one-layer fixture: every decoder linear becomes q4, the
// result is deterministic, it differs from round-to-nearest, and it needs calibration.
// RUN: %python %S/Inputs/tiny_llama.py > %t.mlir
// RUN: llmc-opt %t.mlir --llm-gptq -o %t.gptq1.mlir
// RUN: llmc-opt %t.mlir --llm-gptq -o %t.gptq2.mlir
// RUN: diff %t.gptq1.mlir %t.gptq2.mlir
// RUN: FileCheck %s < %t.gptq1.mlir
// GPTQ's error compensation changes the codes round-to-nearest would pick:
// RUN: llmc-opt %t.mlir --llm-quantize-weights="keep=model.embed_tokens.weight=f32" -o %t.rtn.mlir
// RUN: not diff %t.gptq1.mlir %t.rtn.mlir
// RUN: llmc-opt %t.mlir --llm-gptq="act-order=true format=q8 group-size=64 progress=true" 2>&1 | FileCheck %s --check-prefix=ACT
// RUN: llmc-opt %t.mlir --llm-gptq="keep=*.down_proj.weight=f16" | FileCheck %s --check-prefix=KEEP
// RUN: sed -e 's/, llm.calibration = dense<.*> : tensor<2x16xi32>//' %t.mlir > %t.nocalib.mlir
// RUN: not llmc-opt %t.nocalib.mlir --llm-gptq 2>&1 | FileCheck %s --check-prefix=NOCALIB

// The embedding table is not a decoder linear: GPTQ leaves it for RTN.
// CHECK-DAG: llm.global @model.embed_tokens.weight : !llm.weight<16x64, f32>
// CHECK-DAG: llm.global @model.layers.0.input_layernorm.weight : !llm.weight<64, f32>
// CHECK-DAG: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, q4<g32>> = dense_resource<{{.+}}> : tensor<2304xi8>
// CHECK-DAG: llm.global @model.layers.0.self_attn.k_proj.weight : !llm.weight<32x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.self_attn.v_proj.weight : !llm.weight<32x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.self_attn.o_proj.weight : !llm.weight<64x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.mlp.gate_proj.weight : !llm.weight<96x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.mlp.up_proj.weight : !llm.weight<96x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, q4<g32>>
// ACT: llm-gptq: block 1/1
// ACT: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, q8<g64>>
// KEEP: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, f32>
// NOCALIB: llm-gptq: needs calibration tokens (the llm.calibration module attribute

// GPTQ after fusion: one Hessian for the fused q/k/v (the rows are
// quantized independently given it), so the codes match GPTQ before fusion
// but for float rounding in the blocked products.
// RUN: llmc-opt %t.mlir --llm-fuse-projections --llm-gptq -o %t.fg.mlir
// RUN: llmc-opt %t.mlir --llm-gptq --llm-fuse-projections -o %t.gf.mlir
// RUN: %python %e2e/compare_blobs.py %t.fg.mlir %t.gf.mlir model.layers.0.self_attn.qkv_proj.weight 0.01
// RUN: %python %e2e/compare_blobs.py %t.fg.mlir %t.gf.mlir model.layers.0.mlp.gate_up_proj.weight 0.01
