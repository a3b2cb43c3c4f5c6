// A fixed pool of worker threads that run one parallel loop at a time.
#ifndef LLMC_RUNTIME_CORE_THREADPOOL_H
#define LLMC_RUNTIME_CORE_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmc {

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
  void parallelFor(int64_t n,
                   const std::function<void(int64_t, int64_t, int)> &fn);

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
  const std::function<void(int64_t, int64_t, int)> *job_ = nullptr;
  int64_t jobSize_ = 0;
};

} // namespace llmc

#endif // LLMC_RUNTIME_CORE_THREADPOOL_H
