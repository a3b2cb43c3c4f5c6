// The elementwise ops left unfused (--no-fuse, or --disable-fusion swiglu
// and residual) lower to MLIR-generated loops over vector<W x f32>, W the
// target CPU's float lanes, then a scalar loop for the rest; exp is MLIR's
// polynomial, so the optimized LLVM IR keeps the vector types and calls no
// expf.
// RUN: %python %S/Inputs/tiny_llama.py --stories260k > %t.mlir
// RUN: llmc-opt %t.mlir --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="vector-width=16" | FileCheck %s --check-prefix=MLIR
// RUN: llmc compile %t.mlir --no-fuse --target-cpu x86-64-v4 --emit=llvm -o - --quiet | FileCheck %s --check-prefix=V4
// RUN: llmc compile %t.mlir --no-fuse --target-cpu x86-64-v3 --emit=llvm -o - --quiet | FileCheck %s --check-prefix=V3
// RUN: llmc compile %t.mlir --no-fuse --emit=llvm -o - --quiet | FileCheck %s --check-prefix=V2
// RUN: llmc compile %t.mlir --no-fuse --target-cpu x86-64-v4 --emit=llvm -o - --quiet | FileCheck %s --check-prefix=NOEXP
// RUN: not llmc-opt %t.mlir --llm-plan-memory="max-tokens=4" --llm-lower-to-llvm="vector-width=0" 2>&1 | FileCheck %s --check-prefix=BAD
// The vector loops compute what the fused kernels do: --no-fuse and the
// default agree, on the vector width of this machine's CPU too.
// RUN: llmc compile %t.mlir --no-fuse --target-cpu native -o %t.plain --quiet
// RUN: llmc compile %t.mlir -o %t.fused --quiet
// RUN: %t.plain --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.plain.txt
// RUN: %t.fused --prompt-ids 1,5,9,3,12,7,100,200 --kv-cache f32 --logits > %t.fused.txt
// RUN: %python %e2e/compare_logits.py %t.fused.txt %t.plain.txt 1e-5

// The SiLU: negate, the polynomial exp, 1 + e, divide, 16 lanes at a time.
// MLIR: scf.for
// MLIR: llvm.load %{{.+}} {alignment = 4 : i64} : !llvm.ptr -> vector<16xf32>
// MLIR: arith.negf %{{.+}} : vector<16xf32>
// MLIR-NOT: math.exp
// MLIR: math.fma %{{.+}} : vector<16xf32>
// MLIR: arith.divf %{{.+}} : vector<16xf32>
// MLIR: llvm.store %{{.+}} {alignment = 4 : i64} : vector<16xf32>, !llvm.ptr
// MLIR: llvm.load %{{.+}} {alignment = 4 : i64} : !llvm.ptr -> f32

// V4: fdiv <16 x float>
// V4: fmul <16 x float>
// V4: fadd <16 x float>
// V3: fdiv <8 x float>
// V2: fdiv <4 x float>
// NOEXP-NOT: @expf
// BAD: error: llm-lower-to-llvm: vector-width must be 1..64
