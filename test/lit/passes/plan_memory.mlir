// llm-plan-memory gives each activation an arena offset, reusing dead values' space.
// RUN: llmc-opt %s --llm-plan-memory="max-tokens=4" | FileCheck %s
// RUN: not llmc-opt %s --llm-plan-memory="max-tokens=0" 2>&1 | FileCheck %s --check-prefix=BAD

// Widths 8 and 16 at 4 tokens: 128 and 256 bytes (64-byte aligned).
// %x lives until the last add. The mul still reads %h and %g, so it needs a
// fresh slot (640); once the mul has run, %h's and %g's space is free again:
// the down projection takes 128 and the add takes 256.
// CHECK-LABEL: func.func @forward
// CHECK-SAME: llm.arena_bytes = 896 : i64, llm.max_tokens = 4 : i64
// CHECK: llm.embedding {{.+}} {llm.offset = 0 : i64}
// CHECK: llm.linear {{.+}} {llm.offset = 128 : i64} {{.+}} -> tensor<?x16xf32>
// CHECK: llm.silu {{.+}} {llm.offset = 384 : i64}
// CHECK: llm.mul {{.+}} {llm.offset = 640 : i64}
// CHECK: llm.linear {{.+}} {llm.offset = 128 : i64} {{.+}} -> tensor<?x8xf32>
// CHECK: llm.add {{.+}} {llm.offset = 256 : i64}
// The logits go to the caller's buffer and get no offset.
// CHECK: llm.lm_head
// CHECK-NOT: llm.offset
// CHECK: return
// BAD: max-tokens must be positive
module attributes {llm.config = {hidden_size = 8 : i64, intermediate_size = 16 : i64, num_layers = 1 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, vocab_size = 4 : i64, max_seq_len = 8 : i64, rms_norm_eps = 1.0e-05 : f64, rope_theta = 1.0e+04 : f64}} {
  llm.global @emb : !llm.weight<4x8, f32> = dense<0.5> : tensor<4x8xf32>
  llm.global @up : !llm.weight<16x8, f32> = dense<0.5> : tensor<16x8xf32>
  llm.global @down : !llm.weight<8x16, f32> = dense<0.5> : tensor<8x16xf32>
  func.func @forward(%ids: tensor<?xi32>, %pos: index, %cache: !llm.kv_cache<layers = 1, max_seq = 8>) -> tensor<?x4xf32> {
    %e = llm.weight @emb : !llm.weight<4x8, f32>
    %x = llm.embedding %ids, %e : tensor<?xi32>, !llm.weight<4x8, f32> -> tensor<?x8xf32>
    %u = llm.weight @up : !llm.weight<16x8, f32>
    %h = llm.linear %x, %u : tensor<?x8xf32>, !llm.weight<16x8, f32> -> tensor<?x16xf32>
    %g = llm.silu %h : tensor<?x16xf32>
    %m = llm.mul %g, %h : tensor<?x16xf32>
    %d = llm.weight @down : !llm.weight<8x16, f32>
    %y = llm.linear %m, %d : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
    %r = llm.add %x, %y : tensor<?x8xf32>
    %l = llm.lm_head %r, %e {tied} : tensor<?x8xf32>, !llm.weight<4x8, f32> -> tensor<?x4xf32>
    return %l : tensor<?x4xf32>
  }
}
