// llm-prune-structured on the three-layer fixture whose layers already differ
// (4/2 heads FFN 96, 2/1 heads FFN 40, 4/4 heads FFN 128): FLaP shrinks each
// layer to its own shape and gives o_proj/down_proj the compensating bias;
// L2 and Wanda-SP take the same share of every layer.
// RUN: %python %S/Inputs/tiny_llama.py --hetero > %t.mlir
// RUN: llmc-opt %t.mlir --llm-prune-structured="ratio=0.45 progress=true" -o %t.flap.mlir 2> %t.flap.log
// RUN: FileCheck %s --check-prefix=FLAP < %t.flap.mlir
// RUN: FileCheck %s --check-prefix=FLAPLOG < %t.flap.log
// RUN: llmc-opt %t.mlir --llm-prune-structured="ratio=0.3 method=l2" | FileCheck %s --check-prefix=L2
// RUN: llmc-opt %t.mlir --llm-prune-structured="ratio=0.3 method=wanda-sp progress=true" -o /dev/null 2>&1 | FileCheck %s --check-prefix=WSP
// The pruned module compiles, and the executable's logits are the
// evaluator's (llmc-run runs the artifact's op list).
// RUN: llmc compile %t.flap.mlir -o %t.exe --quiet
// RUN: %t.exe --prompt-ids 1,5,9,3,12,7 --logits > %t.exe.txt
// RUN: llmc-run --weights %t.exe --prompt-ids 1,5,9,3,12,7 --logits > %t.eval.txt
// RUN: %python %e2e/compare_logits.py %t.exe.txt %t.eval.txt 1e-5

// FLAP-DAG: llm.global @model.layers.0.mlp.gate_proj.weight : !llm.weight<35x64, f32>
// FLAP-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x35, f32>
// FLAP-DAG: llm.global @model.layers.0.mlp.down_proj.bias : !llm.weight<64, f32>
// FLAP-DAG: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<64x64, f32>
// FLAP-DAG: llm.global @model.layers.1.mlp.up_proj.weight : !llm.weight<15x64, f32>
// FLAP-DAG: llm.global @model.layers.2.self_attn.q_proj.weight : !llm.weight<32x64, f32>
// FLAP-DAG: llm.global @model.layers.2.self_attn.k_proj.weight : !llm.weight<32x64, f32>
// FLAP-DAG: llm.global @model.layers.2.self_attn.o_proj.weight : !llm.weight<64x32, f32>
// FLAP-DAG: llm.global @model.layers.2.self_attn.o_proj.bias : !llm.weight<64, f32>
// FLAP-DAG: llm.global @model.layers.2.mlp.down_proj.weight : !llm.weight<64x49, f32>
// FLAP: llm.attention {{.*}} {head_dim = 16 : i64, layer = 2 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64}
// FLAP-NEXT: llm.weight @model.layers.2.self_attn.o_proj.weight
// FLAP-NEXT: llm.weight @model.layers.2.self_attn.o_proj.bias
// FLAP-NEXT: llm.linear {{.*}} bias {{.*}} : tensor<?x32xf32>, <64x32, f32>, !llm.weight<64, f32> -> tensor<?x64xf32>
// FLAPLOG: llm-prune-structured: block 3/3
// FLAPLOG: flap removed 2 of 7 KV groups and 165 of 264 FFN channels, 39872 of 86528 matrix weights (46.1%); heads/kv heads and FFN width per layer: attn0=4/2 ffn=35 attn1=2/1 ffn=15 attn2=2/2 ffn=49{{$}}

// L2-DAG: llm.global @model.layers.0.self_attn.q_proj.weight : !llm.weight<32x64, f32>
// L2-DAG: llm.global @model.layers.0.mlp.down_proj.weight : !llm.weight<64x66, f32>
// L2-DAG: llm.global @model.layers.1.mlp.down_proj.weight : !llm.weight<64x28, f32>
// L2-DAG: llm.global @model.layers.2.self_attn.k_proj.weight : !llm.weight<48x64, f32>
// L2-DAG: llm.global @model.layers.2.mlp.down_proj.weight : !llm.weight<64x88, f32>
// L2-NOT: .bias
// WSP: wanda-sp removed 2 of 7 KV groups and 82 of 264 FFN channels, 25984 of 86528 matrix weights (30.0%); heads/kv heads and FFN width per layer: attn0=2/1 ffn=66 attn1=2/1 ffn=28 attn2=3/3 ffn=88{{$}}

// A layer may lose its whole attention: FLaP at 70% removes layer 0's and
// layer 1's, and the cache keeps one layer per remaining attention. Layer
// 1's compensation moves into the bias of layer 0's down_proj, the linear
// before it on the residual stream; layer 0's would go into the embedding
// table, which is tied to the LM head, so it is dropped with a warning.
// RUN: llmc-opt %t.mlir --llm-prune-structured="ratio=0.7 progress=true" -o %t.70.mlir 2> %t.70.log
// RUN: FileCheck %s --check-prefix=GONE < %t.70.mlir
// RUN: FileCheck %s --check-prefix=GONELOG < %t.70.log
// RUN: llmc compile %t.70.mlir -o %t.70.exe --quiet
// RUN: %t.70.exe --prompt-ids 1,5,9,3,12,7 --logits > %t.70.txt
// RUN: llmc-run --weights %t.70.exe --prompt-ids 1,5,9,3,12,7 --logits > %t.70.eval.txt
// RUN: %python %e2e/compare_logits.py %t.70.txt %t.70.eval.txt 1e-5
// GONELOG: warning: llm-prune-structured: 1 removed branch(es) could not fold their bias compensation into the residual stream (a tied embedding table feeds it)
// GONELOG: attn0=0/0 ffn=28 attn1=0/0 ffn=14 attn2=2/2 ffn=45{{$}}
// GONE-NOT: model.layers.0.self_attn
// GONE-NOT: model.layers.1.self_attn
// GONE: func.func @forward(%arg0: tensor<?xi32>, %arg1: index, %arg2: !llm.kv_cache<layers = 1, max_seq = 32>)
// GONE-COUNT-1: llm.attention
// GONE-NOT: llm.attention

// A whole MLP goes too: with layer 1's up_proj all zeros its MLP adds
// nothing, every channel scores 0, and FLaP takes them first. At 8.8% that
// is all that goes, and the pruned module computes what the full one does.
// RUN: %python %S/Inputs/tiny_llama.py --hetero --dead-mlp > %t.dead.mlir
// RUN: llmc-opt %t.dead.mlir --llm-prune-structured="ratio=0.088 progress=true" -o %t.nomlp.mlir 2> %t.nomlp.log
// RUN: FileCheck %s --check-prefix=NOMLP < %t.nomlp.mlir
// RUN: FileCheck %s --check-prefix=NOMLPLOG < %t.nomlp.log
// RUN: llmc compile %t.dead.mlir -o %t.dead --quiet
// RUN: llmc compile %t.nomlp.mlir -o %t.nomlp --quiet
// RUN: %t.dead --prompt-ids 1,5,9,3,12,7 --logits > %t.dead.txt
// RUN: %t.nomlp --prompt-ids 1,5,9,3,12,7 --logits > %t.nomlp.txt
// RUN: %python %e2e/compare_logits.py %t.dead.txt %t.nomlp.txt 1e-5
// NOMLPLOG: flap removed 0 of 7 KV groups and 40 of 264 FFN channels, 7680 of 86528 matrix weights (8.9%); heads/kv heads and FFN width per layer: attn0=4/2 ffn=96 attn1=2/1 ffn=0 attn2=4/4 ffn=128{{$}}
// NOMLP-NOT: model.layers.1.mlp
// NOMLP-NOT: model.layers.1.post_attention_layernorm
// NOMLP: llm.global @model.layers.1.self_attn.o_proj.bias : !llm.weight<64, f32>
// NOMLP: func.func @forward
// NOMLP-COUNT-2: llm.mul
// NOMLP-NOT: llm.mul

// Errors: one line each.
// RUN: not llmc-opt %t.mlir --llm-prune-structured="ratio=0.95" 2>&1 | FileCheck %s --check-prefix=ALL
// RUN: not llmc-opt %t.mlir --llm-prune-structured="ratio=1.5" 2>&1 | FileCheck %s --check-prefix=RATIO
// RUN: not llmc-opt %t.mlir --llm-prune-structured="method=taylor" 2>&1 | FileCheck %s --check-prefix=METHOD
// RUN: not llmc-opt %t.mlir --llm-fuse-projections --llm-prune-structured 2>&1 | FileCheck %s --check-prefix=FUSED
// RUN: sed -e 's/, llm.calibration = dense<.*> : tensor<2x16xi32>//' %t.mlir > %t.nocalib.mlir
// RUN: not llmc-opt %t.nocalib.mlir --llm-prune-structured 2>&1 | FileCheck %s --check-prefix=NOCALIB
// RUN: llmc-opt %t.nocalib.mlir --llm-prune-structured="method=l2" -o /dev/null
// ALL: error: llm-prune-structured: the ratio removes every attention head of the model; choose a lower ratio
// RATIO: error: llm-prune-structured: ratio must be between 0 and 1 (exclusive), got 1.5
// METHOD: error: llm-prune-structured: unknown method 'taylor' (flap, wanda-sp or l2)
// FUSED: error: llm-prune-structured: attention layer 0 is not q/k/v_proj -> rope -> attention -> o_proj -> add (prune before llm-fuse-projections)
// NOCALIB: error: llm-prune-structured: needs calibration tokens
// RUN: not llmc-opt %t.mlir --llm-quantize-weights --llm-prune-structured="method=l2" 2>&1 | FileCheck %s --check-prefix=QUANTIZED
// QUANTIZED: error: llm-prune-structured: @model.layers.0.self_attn.q_proj.weight is not a global stored in a float format: prune before quantizing
