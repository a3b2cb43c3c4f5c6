// llm-lowrank on the three-layer fixture: each decoder linear becomes a pair
// of linears with the rank visible in the types, only where that saves
// weights; auto gives the matrices their own ranks from the calibration
// activations.
// RUN: %python %S/Inputs/tiny_llama.py --hetero > %t.mlir
// RUN: llmc-opt %t.mlir --llm-lowrank="spec=rank=8 progress=true" -o %t.r8.mlir 2> %t.r8.log
// RUN: FileCheck %s --check-prefix=R8 < %t.r8.mlir
// RUN: FileCheck %s --check-prefix=R8LOG < %t.r8.log
// R8-DAG: llm.global @model.layers.0.self_attn.q_proj.weight.v : !llm.weight<8x64, f32>
// R8-DAG: llm.global @model.layers.0.self_attn.q_proj.weight.u : !llm.weight<64x8, f32>
// R8-DAG: llm.global @model.layers.1.mlp.down_proj.weight.v : !llm.weight<8x40, f32>
// R8-DAG: llm.global @model.layers.1.mlp.down_proj.weight.u : !llm.weight<64x8, f32>
// R8-NOT: llm.global @model.layers.0.self_attn.q_proj.weight :
// R8: %[[T:.+]] = llm.linear %{{.+}}, %{{.+}} : tensor<?x64xf32>, <8x64, f32> -> tensor<?x8xf32>
// R8-NEXT: llm.weight @model.layers.0.self_attn.q_proj.weight.u
// R8-NEXT: llm.linear %[[T]], %{{.+}} : tensor<?x8xf32>, <64x8, f32> -> tensor<?x64xf32>
// R8LOG: llm-lowrank: rank=8: 21 matrices factored, 0 kept dense; 21440 of 85504 weights (25.1%)

// Rank 40 saves weights only on layer 2's 128x64 MLP matrices.
// RUN: llmc-opt %t.mlir --llm-lowrank="spec=rank=40 progress=true" -o /dev/null 2>&1 | FileCheck %s --check-prefix=R40
// R40: llm-lowrank: rank=40: 3 matrices factored, 18 kept dense; 83968 of 85504 weights (98.2%); ranks: model.layers.2.mlp.gate_proj.weight=40 model.layers.2.mlp.up_proj.weight=40 model.layers.2.mlp.down_proj.weight=40{{$}}

// auto=0.5: half the weights, ranks of their own.
// RUN: llmc-opt %t.mlir --llm-lowrank="spec=auto=0.5 progress=true" -o %t.auto.mlir 2>&1 | FileCheck %s --check-prefix=AUTO
// AUTO: llm-lowrank: auto=0.5: {{[0-9]+}} matrices factored, {{[0-9]+}} kept dense; {{[0-9]+}} of 85504 weights (4{{[0-9]}}.{{[0-9]}}%)
// Fusion after it puts the V factors of q/k/v side by side.
// RUN: llmc-opt %t.r8.mlir --llm-fuse-projections | FileCheck %s --check-prefix=FUSED
// FUSED: llm.global @model.layers.0.self_attn.qkv_proj.weight.v : !llm.weight<24x64, f32>
// The factored module compiles and runs as the evaluator does.
// RUN: llmc compile %t.auto.mlir -o %t.auto --quiet
// RUN: %t.auto --prompt-ids 1,5,9,3,12,7 --logits > %t.auto.txt
// RUN: llmc-run --weights %t.auto --prompt-ids 1,5,9,3,12,7 --logits > %t.auto.eval.txt
// RUN: %python %e2e/compare_logits.py %t.auto.txt %t.auto.eval.txt 1e-5

// Errors: one line each.
// RUN: not llmc-opt %t.mlir --llm-lowrank="spec=rank=0" 2>&1 | FileCheck %s --check-prefix=RANK
// RUN: not llmc-opt %t.mlir --llm-lowrank="spec=energy=1.5" 2>&1 | FileCheck %s --check-prefix=ENERGY
// RUN: not llmc-opt %t.mlir --llm-lowrank="spec=size=3" 2>&1 | FileCheck %s --check-prefix=SPEC
// RUN: sed -e 's/, llm.calibration = dense<.*> : tensor<2x16xi32>//' %t.mlir > %t.nocalib.mlir
// RUN: not llmc-opt %t.nocalib.mlir --llm-lowrank="spec=auto=0.5" 2>&1 | FileCheck %s --check-prefix=NOCALIB
// Without calibration, rank and energy use the plain SVD.
// RUN: llmc-opt %t.nocalib.mlir --llm-lowrank="spec=energy=0.5" -o /dev/null
// RANK: error: llm-lowrank: rank must be a positive integer, got '0'
// ENERGY: error: llm-lowrank: energy must be between 0 and 1 (exclusive), got '1.5'
// SPEC: error: llm-lowrank: expected rank=R, energy=E or auto=FRACTION, got 'size=3'
// NOCALIB: error: llm-lowrank: auto needs calibration tokens
