// Weight blobs: heap for small ones, ranges of an unlinked spill file for large ones.
#include "passes/WeightStore.h"

#include "mlir/IR/DialectResourceBlobManager.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

namespace llmc {

namespace {

/// One spill file per process, created on first use and unlinked at once, so
/// nothing is left behind whichever way the compile ends.
class SpillFile {
public:
  static SpillFile &get() {
    static SpillFile file;
    return file;
  }

  /// A shared mapping of `bytes` fresh bytes of the file, or nullptr.
  char *map(size_t bytes, size_t &offset, size_t &length) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!opened_) {
      open();
    }
    if (fd_ < 0) {
      return nullptr;
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    length = (bytes + page - 1) / page * page;
    offset = end_;
    // Reserve the blocks now: a mapping of a sparse range on a full disk
    // would fault (SIGBUS) when written, long after this call returned.
    if (posix_fallocate(fd_, static_cast<off_t>(offset),
                        static_cast<off_t>(length)) != 0) {
      release(offset, length); // what it did reserve before it failed
      return nullptr;
    }
    void *p = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                   static_cast<off_t>(offset));
    if (p == MAP_FAILED) {
      release(offset, length);
      return nullptr;
    }
    end_ += length;
    stats_.liveBytes += length;
    ++stats_.blobs;
    return static_cast<char *>(p);
  }

  void unmap(void *p, size_t offset, size_t length) {
    munmap(p, length);
    std::lock_guard<std::mutex> lock(mutex_);
    release(offset, length);
    stats_.liveBytes -= length;
  }

  void countFallback() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.heapFallbacks;
  }

  WeightSpillStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

private:
  void open() {
    opened_ = true;
    llvm::SmallString<256> model;
    llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, model);
    llvm::sys::path::append(model, "llmc-weights-%%%%%%%%.spill");
    llvm::SmallString<256> path;
    int fd = -1;
    if (llvm::sys::fs::createUniqueFile(model, fd, path,
                                        llvm::sys::fs::OF_None,
                                        llvm::sys::fs::owner_read |
                                            llvm::sys::fs::owner_write)) {
      return;
    }
    ::unlink(path.c_str());
    fd_ = fd;
  }

  /// Gives a range's blocks back to the file system (its offsets are not
  /// reused; the file's apparent size only grows).
  void release(size_t offset, size_t length) {
    fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              static_cast<off_t>(offset), static_cast<off_t>(length));
  }

  std::mutex mutex_;
  bool opened_ = false;
  int fd_ = -1;
  size_t end_ = 0;
  WeightSpillStats stats_;
};

} // namespace

uint64_t weightSpillThreshold() {
  static const uint64_t threshold = [] {
    const char *env = std::getenv("LLMC_SPILL_MIN_BYTES");
    if (!env || !*env) {
      return uint64_t{1} << 20;
    }
    if (std::strcmp(env, "off") == 0) {
      return UINT64_MAX;
    }
    char *end = nullptr;
    unsigned long long v = std::strtoull(env, &end, 10);
    return *end ? uint64_t{1} << 20 : static_cast<uint64_t>(v);
  }();
  return threshold;
}

mlir::AsmResourceBlob allocateWeightBlob(size_t bytes) {
  if (bytes > 0 && bytes >= weightSpillThreshold()) {
    SpillFile &file = SpillFile::get();
    size_t offset = 0, length = 0;
    if (char *p = file.map(bytes, offset, length)) {
      return mlir::AsmResourceBlob(
          llvm::ArrayRef<char>(p, bytes), /*dataAlignment=*/64,
          [offset, length](void *data, size_t, size_t) {
            SpillFile::get().unmap(data, offset, length);
          },
          /*dataIsMutable=*/true);
    }
    file.countFallback();
  }
  return mlir::HeapAsmResourceBlob::allocate(bytes, 64);
}

WeightSpillStats weightSpillStats() { return SpillFile::get().stats(); }

} // namespace llmc
