// The thread pool: workers sleep on a condition variable between parallel loops.
#include "runtime/core/threadpool.h"

namespace llmc {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) {
    workers_.emplace_back([this, i] { workerLoop(i); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread &t : workers_) {
    t.join();
  }
}

static void partRange(int64_t n, int parts, int index, int64_t &begin,
                      int64_t &end) {
  int64_t base = n / parts, extra = n % parts;
  begin = index * base + (index < extra ? index : extra);
  end = begin + base + (index < extra ? 1 : 0);
}

void ThreadPool::parallelFor(
    int64_t n, const std::function<void(int64_t, int64_t, int)> &fn) {
  if (workers_.empty() || n <= 1) {
    if (n > 0) {
      fn(0, n, 0);
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    jobSize_ = n;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  start_.notify_all();
  int64_t b, e;
  partRange(n, size(), 0, b, e);
  if (b < e) {
    fn(b, e, 0);
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::workerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t, int64_t, int)> *job;
    int64_t n;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) {
        return;
      }
      seen = generation_;
      job = job_;
      n = jobSize_;
    }
    int64_t b, e;
    partRange(n, size(), index, b, e);
    if (b < e) {
      (*job)(b, e, index);
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) {
        done_.notify_one();
      }
    }
  }
}

} // namespace llmc
