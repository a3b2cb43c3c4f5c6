// llm-fuse-projections on stories260K-shaped IR: q/k/v and gate/up become one
// linear each, over the row-concatenated weight, in every storage format.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-projections -o %t.fused.mlir
// RUN: FileCheck %s < %t.fused.mlir
// RUN: grep -c "= llm.linear" %t.fused.mlir | FileCheck %s --check-prefix=COUNT
// After quantization the blocks of whole groups concatenate: q4 rows of 64
// (two 18-byte groups) give 128 x 36 bytes.
// RUN: llmc-opt %t.mlir --llm-quantize-weights --llm-fuse-projections | FileCheck %s --check-prefix=Q4
// Round-to-nearest is row by row, so fusing before or after it stores the
// same bytes.
// RUN: llmc-opt %t.mlir --llm-quantize-weights --llm-fuse-projections -o %t.qf.mlir
// RUN: llmc-opt %t.mlir --llm-fuse-projections --llm-quantize-weights -o %t.fq.mlir
// RUN: %python %e2e/compare_blobs.py %t.qf.mlir %t.fq.mlir model.layers.0.self_attn.qkv_proj.weight 0
// RUN: %python %e2e/compare_blobs.py %t.qf.mlir %t.fq.mlir model.layers.0.mlp.gate_up_proj.weight 0
// Biases concatenate with their weights.
// RUN: %python %S/Inputs/tiny_llama.py --bias | llmc-opt --llm-fuse-projections | FileCheck %s --check-prefix=BIAS
// Weights of different formats (mixed precision) stay apart.
// RUN: llmc-opt %t.mlir --llm-quantize-weights="keep=*.k_proj.weight=q8" --llm-fuse-projections | FileCheck %s --check-prefix=MIXED
// The fused module still verifies and round-trips.
// RUN: llmc-opt %t.fused.mlir | llmc-opt > /dev/null

// CHECK-NOT: q_proj
// CHECK-DAG: llm.global @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, f32>
// CHECK-DAG: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<344x64, f32>
// CHECK: %[[QKV:.+]]:3 = llm.linear %{{.+}}, %{{.+}} : tensor<?x64xf32>, <128x64, f32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>
// CHECK: llm.rope %[[QKV]]#0
// CHECK: llm.rope %[[QKV]]#1
// CHECK: llm.attention %{{.+}}, %{{.+}}, %[[QKV]]#2
// CHECK: %[[GU:.+]]:2 = llm.linear %{{.+}}, %{{.+}} : tensor<?x64xf32>, <344x64, f32> -> tensor<?x172xf32>, tensor<?x172xf32>
// CHECK: llm.silu %[[GU]]#0
// CHECK: llm.mul %{{.+}}, %[[GU]]#1
// COUNT: {{^}}4{{$}}

// Q4-DAG: llm.global @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, q4<g32>> = dense_resource<{{.+}}> : tensor<4608xi8>
// Q4-DAG: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<344x64, q4<g32>> = dense_resource<{{.+}}> : tensor<12384xi8>

// BIAS-DAG: llm.global @model.layers.0.self_attn.qkv_proj.bias : !llm.weight<128, f32>
// BIAS-DAG: llm.global @model.layers.0.self_attn.o_proj.bias : !llm.weight<64, f32>
// BIAS: llm.linear %{{.+}}, %{{.+}} bias %{{.+}} : tensor<?x64xf32>, <128x64, f32>, !llm.weight<128, f32> -> tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>

// MIXED-DAG: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, q4<g32>>
// MIXED-DAG: llm.global @model.layers.0.self_attn.k_proj.weight : !llm.weight<32x64, q8<g32>>
// MIXED-DAG: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<344x64, q4<g32>>
