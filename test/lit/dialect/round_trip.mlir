// Every llm op, type and format prints and parses back to the same IR.
// RUN: llmc-opt %s | llmc-opt | FileCheck %s

// CHECK-LABEL: module attributes {llm.config =
module attributes {llm.config = {hidden_size = 16 : i64, intermediate_size = 24 : i64, num_layers = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, vocab_size = 8 : i64, max_seq_len = 32 : i64, rms_norm_eps = 1.0e-05 : f64, rope_theta = 1.0e+04 : f64}} {
  // CHECK-DAG: llm.global @emb : !llm.weight<8x16, f32> = dense<1.000000e+00> : tensor<8x16xf32>
  llm.global @emb : !llm.weight<8x16, f32> = dense<1.0> : tensor<8x16xf32>
  // CHECK-DAG: llm.global @norm : !llm.weight<16, bf16> = dense<1.000000e+00> : tensor<16xbf16>
  llm.global @norm : !llm.weight<16, bf16> = dense<1.0> : tensor<16xbf16>
  // CHECK-DAG: llm.global @wq : !llm.weight<16x16, f16> = dense<5.000000e-01> : tensor<16x16xf16>
  llm.global @wq : !llm.weight<16x16, f16> = dense<0.5> : tensor<16x16xf16>
  // Rows of 16 are padded to one group of 32: 8 x 34 and 8 x 20 bytes.
  // CHECK-DAG: llm.global @wk : !llm.weight<8x16, q8<g32>> = dense<0> : tensor<272xi8>
  llm.global @wk : !llm.weight<8x16, q8<g32>> = dense<0> : tensor<272xi8>
  // CHECK-DAG: llm.global @wv : !llm.weight<8x16, q4<g32, asym>> = dense<0> : tensor<160xi8>
  llm.global @wv : !llm.weight<8x16, q4<g32, asym>> = dense<0> : tensor<160xi8>
  llm.global @bias : !llm.weight<8, f32> = dense<0.25> : tensor<8xf32>
  // Shapes only (a config compiled with --random-weights): no data.
  // CHECK-DAG: llm.global @unused : !llm.weight<8x16, q4x8<g32>>{{$}}
  llm.global @unused : !llm.weight<8x16, q4x8<g32>>

  // CHECK-LABEL: func.func @forward
  // CHECK-SAME: (%[[IDS:.+]]: tensor<?xi32>, %[[POS:.+]]: index, %[[CACHE:.+]]: !llm.kv_cache<layers = 1, max_seq = 32>)
  func.func @forward(%ids: tensor<?xi32>, %pos: index, %cache: !llm.kv_cache<layers = 1, max_seq = 32>) -> tensor<?x8xf32> {
    // CHECK: %[[EMB:.+]] = llm.weight @emb : <8x16, f32>
    %emb = llm.weight @emb : !llm.weight<8x16, f32>
    // CHECK: %[[X:.+]] = llm.embedding %[[IDS]], %[[EMB]] : tensor<?xi32>, <8x16, f32> -> tensor<?x16xf32>
    %x = llm.embedding %ids, %emb : tensor<?xi32>, !llm.weight<8x16, f32> -> tensor<?x16xf32>
    %nw = llm.weight @norm : !llm.weight<16, bf16>
    // CHECK: llm.rms_norm %[[X]], %{{.+}} {eps = 9.99999974E-6 : f32} : tensor<?x16xf32>, <16, bf16>
    %h = llm.rms_norm %x, %nw {eps = 1.0e-05 : f32} : tensor<?x16xf32>, !llm.weight<16, bf16>
    %wq = llm.weight @wq : !llm.weight<16x16, f16>
    %wk = llm.weight @wk : !llm.weight<8x16, q8<g32>>
    %wv = llm.weight @wv : !llm.weight<8x16, q4<g32, asym>>
    %b = llm.weight @bias : !llm.weight<8, f32>
    // CHECK: llm.linear %{{.+}}, %{{.+}} : tensor<?x16xf32>, <16x16, f16> -> tensor<?x16xf32>
    %q = llm.linear %h, %wq : tensor<?x16xf32>, !llm.weight<16x16, f16> -> tensor<?x16xf32>
    // CHECK: llm.linear %{{.+}}, %{{.+}} bias %{{.+}} : tensor<?x16xf32>, <8x16, q8<g32>>, !llm.weight<8, f32> -> tensor<?x8xf32>
    %k = llm.linear %h, %wk bias %b : tensor<?x16xf32>, !llm.weight<8x16, q8<g32>>, !llm.weight<8, f32> -> tensor<?x8xf32>
    %v = llm.linear %h, %wv : tensor<?x16xf32>, !llm.weight<8x16, q4<g32, asym>> -> tensor<?x8xf32>
    // CHECK: llm.rope %{{.+}}, %[[POS]] {head_dim = 4 : i64, num_heads = 4 : i64, theta = 1.000000e+04 : f32} : tensor<?x16xf32>
    %qr = llm.rope %q, %pos {num_heads = 4 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32} : tensor<?x16xf32>
    %kr = llm.rope %k, %pos {num_heads = 2 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32} : tensor<?x8xf32>
    // CHECK: llm.attention %{{.+}}, %{{.+}}, %{{.+}}, %[[CACHE]], %[[POS]] {head_dim = 4 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64}
    %a = llm.attention %qr, %kr, %v, %cache, %pos {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 32> -> tensor<?x16xf32>
    // CHECK: llm.add
    %r = llm.add %x, %a : tensor<?x16xf32>
    // CHECK: llm.silu
    %s = llm.silu %r : tensor<?x16xf32>
    // CHECK: llm.mul
    %m = llm.mul %s, %r : tensor<?x16xf32>
    // CHECK: llm.lm_head %{{.+}}, %[[EMB]] {tied} : tensor<?x16xf32>, <8x16, f32> -> tensor<?x8xf32>
    %l = llm.lm_head %m, %emb {tied} : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
    return %l : tensor<?x8xf32>
  }
}

// The fused forms of linear and attention (llm-fuse-norm, -swiglu,
// -residual, -rope) print and parse back.
// CHECK-LABEL: func.func @fused
// CHECK: llm.linear %{{.+}}, %{{.+}} norm(%{{.+}} : !llm.weight<16, f32>) {norm_eps = 9.99999974E-6 : f32, swiglu_block = 16 : i64} : tensor<?x16xf32>, <48x16, q8<g32>> -> tensor<?x24xf32>
// CHECK: llm.linear %{{.+}}, %{{.+}} bias %{{.+}} residual(%{{.+}} : tensor<?x16xf32>) : tensor<?x24xf32>, <16x24, f16>, !llm.weight<16, f32> -> tensor<?x16xf32>
// CHECK: llm.attention {{.+}} {head_dim = 4 : i64, layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_theta = 1.000000e+04 : f32}
func.func @fused(%x: tensor<?x16xf32>, %g: !llm.weight<16, f32>, %wgu: !llm.weight<48x16, q8<g32>>,
                 %wd: !llm.weight<16x24, f16>, %b: !llm.weight<16, f32>, %q: tensor<?x16xf32>,
                 %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %cache: !llm.kv_cache<layers = 1, max_seq = 32>,
                 %pos: index) -> (tensor<?x16xf32>, tensor<?x16xf32>) {
  %h = llm.linear %x, %wgu norm(%g : !llm.weight<16, f32>) {norm_eps = 1.0e-05 : f32, swiglu_block = 16 : i64} : tensor<?x16xf32>, !llm.weight<48x16, q8<g32>> -> tensor<?x24xf32>
  %y = llm.linear %h, %wd bias %b residual(%x : tensor<?x16xf32>) : tensor<?x24xf32>, !llm.weight<16x24, f16>, !llm.weight<16, f32> -> tensor<?x16xf32>
  %a = llm.attention %q, %k, %v, %cache, %pos {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, rope_theta = 1.0e+04 : f32} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 32> -> tensor<?x16xf32>
  return %y, %a : tensor<?x16xf32>, tensor<?x16xf32>
}
