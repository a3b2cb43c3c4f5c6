// llm-lower-to-llvm with target=cuda: every elementwise op is an llmc_k_elementwise call
// (no generated loop touches an activation, so the runtime may keep them on a GPU),
// a SiLU whose one use is a multiply fuses into SWIGLU, and the descriptor says CUDA.
// RUN: llmc-opt %s --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="target=cuda" | FileCheck %s
// RUN: llmc-opt %s --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="target=cuda" | FileCheck %s --check-prefix=NOLOOP
// RUN: not llmc-opt %s --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="target=tpu" 2>&1 | FileCheck %s --check-prefix=BAD

// CHECK-DAG: llvm.func @llmc_k_elementwise(!llvm.ptr, i32, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64)
// CHECK-LABEL: llvm.func @llmc_forward
// CHECK-SAME: (%[[EXEC:.+]]: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %[[N:.+]]: i64,
// CHECK: llvm.call @llmc_k_linear
// silu(h) * h: one SWIGLU (3) over n * 16 floats, reading h twice.
// CHECK: %[[SW:.+]] = llvm.mlir.constant(3 : i32) : i32
// CHECK: llvm.call @llmc_k_elementwise(%[[EXEC]], %[[SW]], %[[H:[^,]+]], %[[H]], %{{.+}}, %{{.+}})
// CHECK: llvm.call @llmc_k_linear
// The residual: ADD (2), with the embedding's buffer at arena offset 0.
// CHECK: %[[ADD:.+]] = llvm.mlir.constant(2 : i32) : i32
// CHECK: llvm.call @llmc_k_elementwise(%[[EXEC]], %[[ADD]],
// CHECK: llvm.call @llmc_k_lm_head
// CHECK: llvm.return
// The descriptor's last field is LLMC_TARGET_CUDA.
// CHECK: llvm.mlir.global external constant @llmc_compiled_program()
// CHECK: llvm.insertvalue %{{.+}}, %{{.+}}[9]
// CHECK-NEXT: %[[T:.+]] = llvm.mlir.constant(1 : i64) : i64
// CHECK-NEXT: llvm.insertvalue %[[T]], %{{.+}}[10]

// NOLOOP-NOT: scf.for
// NOLOOP-NOT: math.exp
// BAD: unknown target 'tpu' (cpu or cuda)
module attributes {llm.config = {hidden_size = 8 : i64, intermediate_size = 16 : i64, num_layers = 1 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, vocab_size = 4 : i64, max_seq_len = 8 : i64, rms_norm_eps = 1.0e-05 : f64, rope_theta = 1.0e+04 : f64}} {
  llm.global @emb : !llm.weight<4x8, f32> = dense<0.5> : tensor<4x8xf32>
  llm.global @up : !llm.weight<16x8, f32> = dense<0.5> : tensor<16x8xf32>
  llm.global @down : !llm.weight<8x16, f16> = dense<0.5> : tensor<8x16xf16>
  func.func @forward(%ids: tensor<?xi32>, %pos: index, %cache: !llm.kv_cache<layers = 1, max_seq = 8>) -> tensor<?x4xf32> {
    %e = llm.weight @emb : !llm.weight<4x8, f32>
    %x = llm.embedding %ids, %e : tensor<?xi32>, !llm.weight<4x8, f32> -> tensor<?x8xf32>
    %u = llm.weight @up : !llm.weight<16x8, f32>
    %h = llm.linear %x, %u : tensor<?x8xf32>, !llm.weight<16x8, f32> -> tensor<?x16xf32>
    %g = llm.silu %h : tensor<?x16xf32>
    %m = llm.mul %g, %h : tensor<?x16xf32>
    %d = llm.weight @down : !llm.weight<8x16, f16>
    %y = llm.linear %m, %d : tensor<?x16xf32>, !llm.weight<8x16, f16> -> tensor<?x8xf32>
    %r = llm.add %x, %y : tensor<?x8xf32>
    %l = llm.lm_head %r, %e {tied} : tensor<?x8xf32>, !llm.weight<4x8, f32> -> tensor<?x4xf32>
    return %l : tensor<?x4xf32>
  }
}
