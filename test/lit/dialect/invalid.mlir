// Each verifier rejects the IR that breaks its invariant, with a message saying which.
// RUN: llmc-opt %s --split-input-file --verify-diagnostics

// Group sizes are multiples of 32 (the kernels' sub-block).
// expected-error @+1 {{group size must be a positive multiple of 32, got 48}}
func.func private @f(%w: !llm.weight<4x48, q4<g48>>)

// -----

// Floating formats take no group size.
// expected-error @+1 {{format f16 takes no group size or zero point}}
func.func private @f(%w: !llm.weight<4x48, f16<g16>>)

// -----

// Unknown storage formats are named in the error.
// expected-error @+1 {{unknown storage format 'q3'}}
func.func private @f(%w: !llm.weight<4x48, q3>)

// -----

// Only q4 has a zero point.
// expected-error @+1 {{only q4 has an asymmetric variant}}
func.func private @f(%w: !llm.weight<4x32, q8<g32, asym>>)

// -----

// The data of a float weight has the weight's shape and element type.
// expected-error @+1 {{data of type 'tensor<4x8xf32>' does not match weight type '!llm.weight<4x8, f16>'}}
llm.global @w : !llm.weight<4x8, f16> = dense<0.0> : tensor<4x8xf32>

// -----

// Block-format data is a byte tensor of exactly the format's size; rows of
// 40 are padded to two groups of 32, so 4 rows take 4 x 2 x 34 bytes.
// expected-error @+1 {{block-format data must be tensor<272xi8>}}
llm.global @w : !llm.weight<4x40, q8<g32>> = dense<0> : tensor<64xi8>

// -----

// A weight reference must name an existing global.
func.func @f() {
  // expected-error @+1 {{'missing' does not name an llm.global}}
  %w = llm.weight @missing : !llm.weight<4, f32>
  return
}

// -----

// ...and carry the global's type.
llm.global @w : !llm.weight<4, f32> = dense<0.0> : tensor<4xf32>
func.func @f() {
  // expected-error @+1 {{type '!llm.weight<8, f32>' differs from @w's '!llm.weight<4, f32>'}}
  %w = llm.weight @w : !llm.weight<8, f32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x12, f32>) {
  // expected-error @+1 {{weight '!llm.weight<8x12, f32>' must be [8, 16]}}
  %y = llm.linear %x, %w : tensor<?x16xf32>, !llm.weight<8x12, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>, %b: !llm.weight<4, f32>) {
  // expected-error @+1 {{bias '!llm.weight<4, f32>' must be a float [8]}}
  %y = llm.linear %x, %w bias %b : tensor<?x16xf32>, !llm.weight<8x16, f32>, !llm.weight<4, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<3x16xf32>, %w: !llm.weight<8x16, f32>) {
  // expected-error @+1 {{sequence lengths differ: 3 vs 4}}
  %y = llm.linear %x, %w : tensor<3x16xf32>, !llm.weight<8x16, f32> -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<12, f32>) {
  // expected-error @+1 {{weight '!llm.weight<12, f32>' must be [16]}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-5 : f32} : tensor<?x16xf32>, !llm.weight<12, f32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<16, f32>) {
  // expected-error @+1 {{eps must be positive}}
  %y = llm.rms_norm %x, %w {eps = 0.0 : f32} : tensor<?x16xf32>, !llm.weight<16, f32>
  return
}

// -----

func.func @f(%ids: tensor<?xi32>, %w: !llm.weight<8x12, f32>) {
  // expected-error @+1 {{table '!llm.weight<8x12, f32>' must be [vocab, 16]}}
  %y = llm.embedding %ids, %w : tensor<?xi32>, !llm.weight<8x12, f32> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %p: index) {
  // expected-error @+1 {{num_heads (3) x head_dim (4) must equal the row width (16)}}
  %y = llm.rope %x, %p {num_heads = 3 : i64, head_dim = 4 : i64, theta = 1.0e4 : f32} : tensor<?x16xf32>
  return
}

// -----

func.func @f(%x: tensor<?x15xf32>, %p: index) {
  // expected-error @+1 {{needs positive num_heads and an even head_dim}}
  %y = llm.rope %x, %p {num_heads = 5 : i64, head_dim = 3 : i64, theta = 1.0e4 : f32} : tensor<?x15xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x12xf32>, %c: !llm.kv_cache<layers = 1, max_seq = 8>, %p: index) {
  // expected-error @+1 {{num_kv_heads (3) must divide num_heads (4)}}
  %o = llm.attention %q, %k, %k, %c, %p {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 3 : i64, head_dim = 4 : i64} : tensor<?x16xf32>, tensor<?x12xf32>, tensor<?x12xf32>, !llm.kv_cache<layers = 1, max_seq = 8> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %c: !llm.kv_cache<layers = 1, max_seq = 8>, %p: index) {
  // expected-error @+1 {{query and result width must be num_heads x head_dim = 8}}
  %o = llm.attention %q, %k, %k, %c, %p {layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 8> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %c: !llm.kv_cache<layers = 1, max_seq = 8>, %p: index) {
  // expected-error @+1 {{layer 1 is outside the cache's 1 layers}}
  %o = llm.attention %q, %k, %k, %c, %p {layer = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 8> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %c: !llm.kv_cache<layers = 2, max_seq = 8>, %p: index) {
  // expected-error @+1 {{cache layer 0 is used by another llm.attention}}
  %o = llm.attention %q, %k, %k, %c, %p {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 2, max_seq = 8> -> tensor<?x16xf32>
  %o2 = llm.attention %q, %k, %k, %c, %p {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 2, max_seq = 8> -> tensor<?x16xf32>
  return
}

// -----

// A tied head must read the embedding table.
llm.global @emb : !llm.weight<8x16, f32> = dense<0.0> : tensor<8x16xf32>
llm.global @head : !llm.weight<8x16, f32> = dense<0.0> : tensor<8x16xf32>
func.func @f(%ids: tensor<?xi32>) -> tensor<?x8xf32> {
  %e = llm.weight @emb : !llm.weight<8x16, f32>
  %h = llm.weight @head : !llm.weight<8x16, f32>
  %x = llm.embedding %ids, %e : tensor<?xi32>, !llm.weight<8x16, f32> -> tensor<?x16xf32>
  // expected-error @+1 {{is tied, but @head is not read by any llm.embedding}}
  %l = llm.lm_head %x, %h {tied} : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return %l : tensor<?x8xf32>
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>) {
  // expected-error @+1 {{weight '!llm.weight<8x16, f32>' must be [9, 16]}}
  %l = llm.lm_head %x, %w : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x9xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>, %g: !llm.weight<8, f32>) {
  // expected-error @+1 {{norm weight '!llm.weight<8, f32>' must be [16] in a float format}}
  %l = llm.lm_head %x, %w norm(%g : !llm.weight<8, f32>) {norm_eps = 1.0e-05 : f32} : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>, %g: !llm.weight<16, f32>) {
  // expected-error @+1 {{norm and norm_eps go together}}
  %l = llm.lm_head %x, %w norm(%g : !llm.weight<16, f32>) : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return
}

// -----

// The model config's head counts must be consistent.
// expected-error @+1 {{llm.config: num_kv_heads (3) must divide num_heads (4)}}
module attributes {llm.config = {hidden_size = 16 : i64, intermediate_size = 24 : i64, num_layers = 1 : i64, num_heads = 4 : i64, num_kv_heads = 3 : i64, head_dim = 4 : i64, vocab_size = 8 : i64, max_seq_len = 32 : i64, rms_norm_eps = 1.0e-05 : f64, rope_theta = 1.0e+04 : f64}} {
}

// -----

// expected-error @+1 {{llm.config: head_dim (4) x num_heads (2) must equal hidden_size (16)}}
module attributes {llm.config = {hidden_size = 16 : i64, intermediate_size = 24 : i64, num_layers = 1 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, vocab_size = 8 : i64, max_seq_len = 32 : i64, rms_norm_eps = 1.0e-05 : f64, rope_theta = 1.0e+04 : f64}} {
}

// -----

// expected-error @+1 {{llm.config lacks integer 'vocab_size'}}
module attributes {llm.config = {hidden_size = 16 : i64, intermediate_size = 24 : i64, num_layers = 1 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, max_seq_len = 32 : i64, rms_norm_eps = 1.0e-05 : f64, rope_theta = 1.0e+04 : f64}} {
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<48x16, f32>) {
  // expected-error @+1 {{swiglu_block must be 16, 32, 48 or 64}}
  %h = llm.linear %x, %w {swiglu_block = 8 : i64} : tensor<?x16xf32>, !llm.weight<48x16, f32> -> tensor<?x24xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<24x16, f32>) {
  // A SwiGLU linear has a gate and an up row per result column.
  // expected-error @+1 {{weight '!llm.weight<24x16, f32>' must be [48, 16]}}
  %h = llm.linear %x, %w {swiglu_block = 16 : i64} : tensor<?x16xf32>, !llm.weight<24x16, f32> -> tensor<?x24xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<48x16, f32>) {
  // expected-error @+1 {{swiglu_block needs one result and no residual}}
  %a, %b = llm.linear %x, %w {swiglu_block = 16 : i64} : tensor<?x16xf32>, !llm.weight<48x16, f32> -> tensor<?x12xf32>, tensor<?x12xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>, %g: !llm.weight<8, f32>) {
  // expected-error @+1 {{norm '!llm.weight<8, f32>' must be a float [16]}}
  %h = llm.linear %x, %w norm(%g : !llm.weight<8, f32>) {norm_eps = 1.0e-05 : f32} : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>, %g: !llm.weight<16, f32>) {
  // expected-error @+1 {{a fused norm needs a positive norm_eps}}
  %h = llm.linear %x, %w norm(%g : !llm.weight<16, f32>) : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>) {
  // expected-error @+1 {{norm_eps without a norm}}
  %h = llm.linear %x, %w {norm_eps = 1.0e-05 : f32} : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %w: !llm.weight<8x16, f32>) {
  // expected-error @+1 {{residual must have the type of the one result}}
  %h = llm.linear %x, %w residual(%x : tensor<?x16xf32>) : tensor<?x16xf32>, !llm.weight<8x16, f32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %v: tensor<?x8xf32>, %c: !llm.kv_cache<layers = 1, max_seq = 32>, %p: index) {
  // expected-error @+1 {{rope_theta must be positive and head_dim even}}
  %a = llm.attention %q, %k, %v, %c, %p {layer = 0 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, rope_theta = 0.0 : f32} : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, !llm.kv_cache<layers = 1, max_seq = 32> -> tensor<?x16xf32>
  return
}
