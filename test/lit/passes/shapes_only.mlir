// Globals without data (a config compiled with --random-weights): the format
// and layout passes retype them exactly as they retype the same globals with
// data, and every pass that needs the values refuses the module with one
// error naming the pass and the global.
// RUN: %python %S/Inputs/tiny_llama.py > %t.full.mlir
// RUN: sed -E 's/ = dense<.*> : tensor<[0-9x]+xf32>$//' %t.full.mlir > %t.mlir
// RUN: grep -c "llm.global" %t.mlir | FileCheck %s --check-prefix=GLOBALS
// RUN: not grep "llm.global.* = dense" %t.mlir
// The default q4 pipeline's format and layout passes, with and without data:
// the same globals of the same types.
// RUN: llmc-opt %t.mlir --llm-quantize-weights="format=q4 group-size=32 keep=model.embed_tokens.weight=q8" --llm-fuse-projections --llm-fuse-swiglu --llm-interleave-weights > %t.q4.mlir
// RUN: FileCheck %s < %t.q4.mlir
// RUN: grep "llm.global" %t.q4.mlir > %t.q4.types
// RUN: llmc-opt %t.full.mlir --llm-quantize-weights="format=q4 group-size=32 keep=model.embed_tokens.weight=q8" --llm-fuse-projections --llm-fuse-swiglu --llm-interleave-weights | grep "llm.global" | sed -E 's/ = dense(_resource)?<.*> : tensor<[0-9x]+x[a-z0-9]+>$//' > %t.q4full.types
// RUN: diff %t.q4.types %t.q4full.types
// RUN: llmc-opt %t.mlir --llm-convert-weight-format="format=f16" --llm-fuse-projections --llm-interleave-weights | FileCheck %s --check-prefix=F16
// RUN: not llmc-opt %t.mlir --llm-gptq 2>&1 | FileCheck %s --check-prefix=GPTQ
// RUN: not llmc-opt %t.mlir --llm-awq 2>&1 | FileCheck %s --check-prefix=AWQ
// RUN: not llmc-opt %t.mlir --llm-prune 2>&1 | FileCheck %s --check-prefix=PRUNE
// RUN: not llmc-opt %t.mlir --llm-prune-structured 2>&1 | FileCheck %s --check-prefix=PRUNES
// RUN: not llmc-opt %t.mlir --llm-lowrank 2>&1 | FileCheck %s --check-prefix=LOWRANK

// GLOBALS: {{^}}11{{$}}
// CHECK: llm.global @model.embed_tokens.weight : !llm.weight<16x64, q8<g32>>{{$}}
// CHECK: llm.global @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, q4x8<g32>>{{$}}
// CHECK: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<192x64, q4x8<g32>>{{$}}
// CHECK: llm.linear {{.*}} {swiglu_block = 16 : i64} : tensor<?x64xf32>, <192x64, q4x8<g32>>
// CHECK-NOT: dense
// F16: llm.global @model.layers.0.self_attn.qkv_proj.weight : !llm.weight<128x64, f16x16>{{$}}
// F16: llm.global @model.layers.0.mlp.gate_up_proj.weight : !llm.weight<192x64, f16x16>{{$}}
// F16-NOT: dense
// GPTQ: error: llm-gptq needs the weights' values, and @model.embed_tokens.weight has none (the module has shapes only: compiled from a config with --random-weights)
// AWQ: error: llm-awq needs the weights' values
// PRUNE: error: llm-prune needs the weights' values
// PRUNES: error: llm-prune-structured needs the weights' values
// LOWRANK: error: llm-lowrank needs the weights' values
