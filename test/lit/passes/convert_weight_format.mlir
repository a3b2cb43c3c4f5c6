// llm-convert-weight-format re-encodes float weights and retypes their references.
// RUN: llmc-opt %s --split-input-file --llm-convert-weight-format | FileCheck %s
// RUN: llmc-opt %s --split-input-file --llm-convert-weight-format="format=bf16 include-norms=true" | FileCheck %s --check-prefix=BF16
// RUN: not llmc-opt %s --split-input-file --llm-convert-weight-format="format=q4" 2>&1 | FileCheck %s --check-prefix=BAD

// Matrices go to f16 (values rounded to nearest even); norms stay f32 by default.
// CHECK-DAG: llm.global @w : !llm.weight<2x2, f16> = dense_resource<w.f16> : tensor<2x2xf16>
// CHECK-DAG: llm.global @norm : !llm.weight<2, f32> = dense<1.000000e+00> : tensor<2xf32>
// CHECK-LABEL: func.func @f
// CHECK: llm.weight @w : <2x2, f16>
// CHECK: llm.linear %{{.+}}, %{{.+}} : tensor<?x2xf32>, <2x2, f16>
// CHECK: llm.weight @norm : <2, f32>
// The f16 bits of 1.0, -2.0, 0.5, 65504.0 (0x3C00, 0xC000, 0x3800, 0x7BFF), little-endian after the blob's alignment word (64):
// CHECK: w.f16: "0x40000000003C00C00038FF7B"
// BF16-DAG: llm.global @w : !llm.weight<2x2, bf16>
// BF16-DAG: llm.global @norm : !llm.weight<2, bf16> = dense_resource<norm.bf16> : tensor<2xbf16>
// BAD: format must be f16, bf16 or f32, got 'q4'
llm.global @w : !llm.weight<2x2, f32> = dense<[[1.0, -2.0], [0.5, 65504.0]]> : tensor<2x2xf32>
llm.global @norm : !llm.weight<2, f32> = dense<1.0> : tensor<2xf32>
func.func @f(%x: tensor<?x2xf32>) -> tensor<?x2xf32> {
  %w = llm.weight @w : !llm.weight<2x2, f32>
  %y = llm.linear %x, %w : tensor<?x2xf32>, !llm.weight<2x2, f32> -> tensor<?x2xf32>
  %n = llm.weight @norm : !llm.weight<2, f32>
  %z = llm.rms_norm %y, %n {eps = 1.0e-5 : f32} : tensor<?x2xf32>, !llm.weight<2, f32>
  return %z : tensor<?x2xf32>
}
