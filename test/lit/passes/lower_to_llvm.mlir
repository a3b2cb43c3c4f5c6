// llm-lower-to-llvm turns a planned @forward into llmc_forward: kernel calls, generated loops, a descriptor.
// RUN: llmc-opt %s --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="fingerprint=77 default-weights=w.llmc" | FileCheck %s
// RUN: not llmc-opt %s --llm-lower-to-llvm 2>&1 | FileCheck %s --check-prefix=NOPLAN

// Globals and the config leave the module: their data go to the artifact.
// CHECK-NOT: llm.global
// CHECK-DAG: llvm.func @llmc_k_embedding(!llvm.ptr, !llvm.ptr, i32, i32, i32, !llvm.ptr, i64, i64, !llvm.ptr)
// CHECK-DAG: llvm.func @llmc_k_linear(!llvm.ptr, !llvm.ptr, i64, i64, !llvm.ptr, i32, i32, i32, i64, !llvm.ptr, i32, !llvm.ptr)
// CHECK-LABEL: llvm.func @llmc_forward
// CHECK-SAME: (%[[EXEC:.+]]: !llvm.ptr, %[[W:.+]]: !llvm.ptr, %[[ARENA:.+]]: !llvm.ptr, %[[TOK:.+]]: !llvm.ptr, %[[N:.+]]: i64, %[[START:.+]]: i64, %[[ROWS:.+]]: i64, %[[LOGITS:.+]]: !llvm.ptr)
// Weight 0 is loaded from the table; the embedding writes at arena offset 0.
// CHECK: %[[SLOT:.+]] = llvm.getelementptr %[[W]][%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[EMB:.+]] = llvm.load %[[SLOT]] : !llvm.ptr -> !llvm.ptr
// CHECK: llvm.call @llmc_k_embedding(%[[EXEC]], %[[EMB]], %{{.+}}, %{{.+}}, %{{.+}}, %[[TOK]], %[[N]], %{{.+}}, %{{.+}})
// CHECK: llvm.call @llmc_k_linear
// silu is a generated loop over n * 16 elements: 4 lanes at a time (the
// default vector width), then one at a time; exp is the polynomial.
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %{{.+}} : i64
// CHECK-NOT: math.exp
// CHECK: arith.divf %{{.+}} : vector<4xf32>
// CHECK: scf.for
// CHECK: arith.divf %{{.+}} : f32
// CHECK: scf.for
// CHECK: arith.mulf %{{.+}} : vector<4xf32>
// CHECK: llvm.call @llmc_k_linear
// CHECK: scf.for
// CHECK: arith.addf %{{.+}} : vector<4xf32>
// lm_head reads only the last `rows` rows and writes the caller's logits
// (no norm: a null pointer).
// CHECK: %[[SKIP:.+]] = llvm.sub %[[N]], %[[ROWS]]
// CHECK: llvm.call @llmc_k_lm_head(%[[EXEC]], %{{.+}}, %[[ROWS]], {{.+}}, %[[LOGITS]])
// CHECK: llvm.return
// The descriptor: ABI 2, 3 weights, 896-byte arena, 4 tokens, fingerprint 77.
// CHECK: llvm.mlir.global external constant @llmc_compiled_program()
// CHECK-DAG: llvm.mlir.constant(3 : i32)
// CHECK-DAG: llvm.mlir.constant(896 : i64)
// CHECK-DAG: llvm.mlir.constant(77 : i64)
// CHECK-DAG: llvm.mlir.addressof @llmc_forward
// CHECK-DAG: llvm.mlir.addressof @llmc_default_weights
// NOPLAN: no memory plan (run llm-plan-memory first)
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
