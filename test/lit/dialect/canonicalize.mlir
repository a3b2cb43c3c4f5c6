// Folds and canonicalizations of the llm ops.
// RUN: llmc-opt %s --split-input-file --canonicalize --cse | FileCheck %s

// An all-zero bias is dropped; a non-zero one stays.
llm.global @w : !llm.weight<8x16, f32> = dense<1.0> : tensor<8x16xf32>
llm.global @zero : !llm.weight<8, f32> = dense<0.0> : tensor<8xf32>
llm.global @nonzero : !llm.weight<8, f32> = dense<[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]> : tensor<8xf32>
// CHECK-LABEL: func.func @bias
func.func @bias(%x: tensor<?x16xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %w = llm.weight @w : !llm.weight<8x16, f32>
  %z = llm.weight @zero : !llm.weight<8, f32>
  %n = llm.weight @nonzero : !llm.weight<8, f32>
  // CHECK: %[[A:.+]] = llm.linear %{{.+}}, %{{.+}} : tensor<?x16xf32>, <8x16, f32> -> tensor<?x8xf32>
  %a = llm.linear %x, %w bias %z : tensor<?x16xf32>, !llm.weight<8x16, f32>, !llm.weight<8, f32> -> tensor<?x8xf32>
  // CHECK: %[[B:.+]] = llm.linear %{{.+}}, %{{.+}} bias %{{.+}} : tensor<?x16xf32>, <8x16, f32>, !llm.weight<8, f32> -> tensor<?x8xf32>
  %b = llm.linear %x, %w bias %n : tensor<?x16xf32>, !llm.weight<8x16, f32>, !llm.weight<8, f32> -> tensor<?x8xf32>
  return %a, %b : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Pure ops whose results are unused disappear; attention writes the cache and stays.
// CHECK-LABEL: func.func @dead
func.func @dead(%x: tensor<?x8xf32>, %c: !llm.kv_cache<layers = 1, max_seq = 8>, %p: index) {
  // CHECK-NOT: llm.silu
  %s = llm.silu %x : tensor<?x8xf32>
  // CHECK: llm.attention
  %o = llm.attention %x, %x, %x, %c, %p {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 8> -> tensor<?x8xf32>
  return
}

// -----

// add and mul are commutative, so x+y and y+x are one value after CSE.
// CHECK-LABEL: func.func @cse
func.func @cse(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // CHECK: %[[S:.+]] = llm.add
  // CHECK-NOT: llm.add
  // CHECK: llm.mul %[[S]], %[[S]]
  %a = llm.add %x, %y : tensor<?x8xf32>
  %b = llm.add %y, %x : tensor<?x8xf32>
  %m = llm.mul %a, %b : tensor<?x8xf32>
  return %m : tensor<?x8xf32>
}
