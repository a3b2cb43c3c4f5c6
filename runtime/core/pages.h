// Zeroed memory from anonymous pages, touched only where written: a KV cache sized for the whole
// context costs resident memory only for the positions in use.
#ifndef LLMC_RUNTIME_CORE_PAGES_H
#define LLMC_RUNTIME_CORE_PAGES_H

#include <cstddef>
#include <new>
#include <sys/mman.h>

namespace llmc {

template <typename T> class PageBuffer {
public:
  PageBuffer() = default;
  PageBuffer(const PageBuffer &) = delete;
  PageBuffer &operator=(const PageBuffer &) = delete;
  ~PageBuffer() { release(); }

  /// `n` zeroed elements; the kernel maps a page when it is first written.
  /// Throws std::bad_alloc when the address space is refused.
  void assign(size_t n) {
    release();
    if (n == 0) {
      return;
    }
    void *p = ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      throw std::bad_alloc();
    }
    data_ = static_cast<T *>(p);
    size_ = n;
  }
  T *data() { return data_; }
  const T *data() const { return data_; }
  size_t size() const { return size_; }

private:
  void release() {
    if (data_) {
      ::munmap(data_, size_ * sizeof(T));
    }
    data_ = nullptr;
    size_ = 0;
  }
  T *data_ = nullptr;
  size_t size_ = 0;
};

} // namespace llmc

#endif // LLMC_RUNTIME_CORE_PAGES_H
