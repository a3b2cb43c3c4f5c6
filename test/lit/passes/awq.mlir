// llm-awq on the fixed fixture: scales folded into the norms (and up_proj), linears quantized.
// RUN: %python %S/Inputs/tiny_llama.py > %t.mlir
// RUN: llmc-opt %t.mlir --llm-awq -o %t.awq1.mlir
// RUN: llmc-opt %t.mlir --llm-awq -o %t.awq2.mlir
// RUN: diff %t.awq1.mlir %t.awq2.mlir
// RUN: FileCheck %s < %t.awq1.mlir
// RUN: llmc-opt %t.mlir --llm-awq="format=q4a group-size=64 grid=5 progress=true" 2>&1 | FileCheck %s --check-prefix=ASYM
// RUN: sed -e 's/, llm.calibration = dense<.*> : tensor<2x16xi32>//' %t.mlir > %t.nocalib.mlir
// RUN: not llmc-opt %t.nocalib.mlir --llm-awq 2>&1 | FileCheck %s --check-prefix=NOCALIB

// The norms absorbed 1/s: their data were rewritten (still f32).
// CHECK-DAG: llm.global @model.layers.0.input_layernorm.weight : !llm.weight<64, f32> = dense_resource<model.layers.0.input_layernorm.weight.f32> : tensor<64xf32>
// CHECK-DAG: llm.global @model.layers.0.post_attention_layernorm.weight : !llm.weight<64, f32> = dense_resource<model.layers.0.post_attention_layernorm.weight.f32>
// CHECK-DAG: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.self_attn.o_proj.weight : !llm.weight<64x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.mlp.up_proj.weight : !llm.weight<96x64, q4<g32>>
// CHECK-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x96, q4<g32>>
// The final norm feeds the LM head, which AWQ leaves alone.
// CHECK-DAG: llm.global @model.norm.weight : !llm.weight<64, f32> = dense<
// ASYM: llm-awq: block 1/1
// ASYM: llm.global @model.layers.0.mlp.gate_proj.weight : !llm.weight<96x64, q4<g64, asym>>
// NOCALIB: llm-awq: needs calibration tokens

// AWQ after fusion finds the same absorbers through the IR (the norms, the
// up rows of the fused gate/up), so the weights match AWQ before fusion but
// for float rounding.
// RUN: llmc-opt %t.mlir --llm-fuse-projections --llm-awq -o %t.fa.mlir
// RUN: llmc-opt %t.mlir --llm-awq --llm-fuse-projections -o %t.af.mlir
// RUN: %python %e2e/compare_blobs.py %t.fa.mlir %t.af.mlir model.layers.0.self_attn.qkv_proj.weight 0.01
// RUN: %python %e2e/compare_blobs.py %t.fa.mlir %t.af.mlir model.layers.0.mlp.gate_up_proj.weight 0.01
// RUN: %python %e2e/compare_blobs.py %t.fa.mlir %t.af.mlir model.layers.0.post_attention_layernorm.weight 0.01
