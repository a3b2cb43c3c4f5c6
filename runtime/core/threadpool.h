// A fixed pool of worker threads that run one parallel loop at a time.
#ifndef LLMC_RUNTIME_CORE_THREADPOOL_H
#define LLMC_RUNTIME_CORE_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace llmc {

/// A non-owning reference to a callable taking (begin, end, thread): what a
/// parallel loop runs, without the allocation or type erasure of a
/// std::function per call. The callable must outlive the reference (a
/// parallel loop returns only when every part is done).
class RangeFn {
public:
  template <class F, class = std::enable_if_t<
                         !std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(const F &f) // NOLINT: converts from any such callable
      : obj_(&f), call_([](const void *o, int64_t b, int64_t e, int t) {
          (*static_cast<const F *>(o))(b, e, t);
        }) {}
  void operator()(int64_t b, int64_t e, int t) const { call_(obj_, b, e, t); }

private:
  const void *obj_;
  void (*call_)(const void *, int64_t, int64_t, int);
};

class ThreadPool {
public:
  /// `threads` counts the calling thread, so 1 means no workers.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  /// Splits [0, n) into size() contiguous parts and runs
  /// fn(begin, end, thread) on each, the caller taking part 0. Returns when
  /// all parts are done. Not reentrant.
  void parallelFor(int64_t n, RangeFn fn);

private:
  void workerLoop(int index);
  void stopWorkers();

  std::vector<std::thread> workers_;
  // Decode runs hundreds of short loops per token: workers spin briefly on
  // `generation_` before sleeping, so a loop starts without a syscall.
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  const RangeFn *job_ = nullptr;
  int64_t jobSize_ = 0;
};

} // namespace llmc

#endif // LLMC_RUNTIME_CORE_THREADPOOL_H
