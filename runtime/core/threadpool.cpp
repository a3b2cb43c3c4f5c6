// The thread pool: workers spin, then sleep, between parallel loops.
#include "runtime/core/threadpool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LLMC_PAUSE() _mm_pause()
#else
#define LLMC_PAUSE() std::this_thread::yield()
#endif

namespace llmc {

namespace {

constexpr int kSpinIterations = 1 << 16;

void partRange(int64_t n, int parts, int index, int64_t &begin, int64_t &end) {
  int64_t base = n / parts, extra = n % parts;
  begin = index * base + (index < extra ? index : extra);
  end = begin + base + (index < extra ? 1 : 0);
}

} // namespace

ThreadPool::ThreadPool(int threads) {
  try {
    for (int i = 1; i < threads; ++i) {
      workers_.emplace_back([this, i] { workerLoop(i); });
    }
  } catch (...) {
    // The destructor does not run for a half-built pool: stop and join the
    // workers that did start, or their std::thread objects would terminate.
    stopWorkers();
    throw;
  }
}

ThreadPool::~ThreadPool() { stopWorkers(); }

void ThreadPool::stopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread &t : workers_) {
    t.join();
  }
}

void ThreadPool::parallelFor(int64_t n, RangeFn fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) {
      fn(0, n, 0);
    }
    return;
  }
  job_ = &fn;
  jobSize_ = n;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // The lock orders the job's publication with sleepers' wake-up check.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load() > 0) {
    wake_.notify_all();
  }
  int64_t b, e;
  partRange(n, size(), 0, b, e);
  if (b < e) {
    fn(b, e, 0);
  }
  while (pending_.load(std::memory_order_acquire) != 0) {
    LLMC_PAUSE();
  }
  job_ = nullptr;
}

void ThreadPool::workerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      LLMC_PAUSE();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] {
        return generation_.load(std::memory_order_acquire) != seen;
      });
      sleepers_.fetch_sub(1);
      g = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) {
      return;
    }
    seen = g;
    int64_t b, e;
    partRange(jobSize_, size(), index, b, e);
    if (b < e) {
      (*job_)(b, e, index);
    }
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

} // namespace llmc
