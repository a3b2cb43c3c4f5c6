// The CUDA backend: a gpu::Session that keeps weights, activations, the KV cache and the logits on one GPU.
#ifndef LLMC_RUNTIME_CUDA_BACKEND_H
#define LLMC_RUNTIME_CUDA_BACKEND_H

#include "runtime/core/gpu.h"

#include <memory>
#include <string>

namespace llmc::cuda {

/// Opens the first GPU, uploads (or synthesizes) the weights in the GPU
/// layout and allocates the session's buffers. Null with `error` set ("no
/// CUDA device found: ...", "out of GPU memory: ...") when it cannot.
std::unique_ptr<gpu::Session> createSession(const gpu::SessionSpec &spec,
                                            std::string &error);

} // namespace llmc::cuda

#endif // LLMC_RUNTIME_CUDA_BACKEND_H
