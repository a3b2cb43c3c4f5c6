// llmc-membw: the machine's read bandwidth, measured the way a decode step reads its weights.
//
//   llmc-membw [--threads N] [--mib M] [--reps R] [--json]
//
// Reads a buffer of M MiB (default 1024: far past any cache) R times (default
// 5) on N threads (default 1), each thread reading its own contiguous part
// with 512-bit (or 256-bit) loads, three ways: as one sequential stream; as
// 8 streams side by side (the part cut in 8 runs, one load from each in
// turn); and as 8 streams with a software prefetch 2 KB ahead in each. It
// prints the best rep's GB/s (1e9 bytes/s) of each and, as the machine's
// read bandwidth, the best of the three: on the Xeon measured one stream
// read 13-14 GB/s on a thread and 8 streams 19 (docs/PERFORMANCE.md), so a
// figure from one stream alone would flatter every kernel set against it.
// bench/run.py runs it beside every speed measurement, so a kernel's GB/s
// is set against this machine's, measured in the same run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
// GCC 12's AVX-512 headers trip -Wuninitialized inside the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace {

__attribute__((target("avx2"))) uint64_t sumAvx2(const uint64_t *p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i *>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i *>(p + i + 4)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i *>(p + i + 8)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i *>(p + i + 12)));
  }
  __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i *>(out), a);
  return out[0] ^ out[1] ^ out[2] ^ out[3];
}

/// The 8 words of v folded with xor (not _mm512_reduce_add_epi64, whose
/// signed adds overflow on these arbitrary words: undefined behaviour).
__attribute__((target("avx512f"))) uint64_t foldXor(__m512i v) {
  alignas(64) uint64_t w[8];
  _mm512_store_si512(w, v);
  uint64_t s = 0;
  for (uint64_t x : w) {
    s ^= x;
  }
  return s;
}

__attribute__((target("avx512f"))) uint64_t sumAvx512(const uint64_t *p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm512_xor_si512(a0, _mm512_load_si512(p + i));
    a1 = _mm512_xor_si512(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_xor_si512(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_xor_si512(a3, _mm512_load_si512(p + i + 24));
  }
  return foldXor(_mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3)));
}

/// How many runs a thread's part is cut into, and how far ahead (words)
/// each run is prefetched when asked.
constexpr size_t kStreams = 8;
constexpr size_t kAheadWords = 2048 / 8;

template <bool Prefetch>
__attribute__((target("avx512f"))) uint64_t sumStreamsAvx512(const uint64_t *p, size_t n) {
  const size_t seg = n / kStreams / 8 * 8;
  __m512i a[kStreams];
  for (size_t s = 0; s < kStreams; ++s) {
    a[s] = _mm512_setzero_si512();
  }
  for (size_t o = 0; o < seg; o += 8) {
    for (size_t s = 0; s < kStreams; ++s) {
      const uint64_t *q = p + s * seg + o;
      if (Prefetch) {
        _mm_prefetch(reinterpret_cast<const char *>(q + kAheadWords), _MM_HINT_T0);
      }
      a[s] = _mm512_xor_si512(a[s], _mm512_load_si512(q));
    }
  }
  for (size_t s = 1; s < kStreams; ++s) {
    a[0] = _mm512_xor_si512(a[0], a[s]);
  }
  return foldXor(a[0]);
}

template <bool Prefetch>
__attribute__((target("avx2"))) uint64_t sumStreamsAvx2(const uint64_t *p, size_t n) {
  const size_t seg = n / kStreams / 8 * 8;
  __m256i a[kStreams];
  for (size_t s = 0; s < kStreams; ++s) {
    a[s] = _mm256_setzero_si256();
  }
  for (size_t o = 0; o < seg; o += 8) {
    for (size_t s = 0; s < kStreams; ++s) {
      const uint64_t *q = p + s * seg + o;
      if (Prefetch) {
        _mm_prefetch(reinterpret_cast<const char *>(q + kAheadWords), _MM_HINT_T0);
      }
      a[s] = _mm256_xor_si256(
          a[s], _mm256_xor_si256(_mm256_load_si256(reinterpret_cast<const __m256i *>(q)),
                                 _mm256_load_si256(reinterpret_cast<const __m256i *>(q + 4))));
    }
  }
  for (size_t s = 1; s < kStreams; ++s) {
    a[0] = _mm256_xor_si256(a[0], a[s]);
  }
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i *>(out), a[0]);
  return out[0] ^ out[1] ^ out[2] ^ out[3];
}

/// The part read as kStreams runs side by side (`prefetch`: with software
/// prefetch); the bytes counted are seg * kStreams words.
uint64_t sumStreams(const uint64_t *p, size_t n, bool prefetch) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx512) {
    return prefetch ? sumStreamsAvx512<true>(p, n) : sumStreamsAvx512<false>(p, n);
  }
  if (avx2) {
    return prefetch ? sumStreamsAvx2<true>(p, n) : sumStreamsAvx2<false>(p, n);
  }
  const size_t seg = n / kStreams / 8 * 8;
  uint64_t s = 0;
  for (size_t o = 0; o < seg; ++o) {
    for (size_t r = 0; r < kStreams; ++r) {
      s ^= p[r * seg + o];
    }
  }
  return s;
}

uint64_t sumWords(const uint64_t *p, size_t n) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx512) {
    return sumAvx512(p, n);
  }
  if (avx2) {
    return sumAvx2(p, n);
  }
  uint64_t s = 0;
  for (size_t i = 0; i < n; ++i) {
    s ^= p[i];
  }
  return s;
}

[[noreturn]] void usage(const char *why) {
  std::fprintf(stderr,
               "llmc-membw: %s\nusage: llmc-membw [--threads N] [--mib M] "
               "[--reps R] [--json]\n",
               why);
  std::exit(2);
}

long parsePositive(const char *flag, const char *v) {
  char *end = nullptr;
  long x = v ? std::strtol(v, &end, 10) : 0;
  if (!v || *end != '\0' || x <= 0 || x > (1L << 20)) {
    usage((std::string(flag) + " takes a positive integer").c_str());
  }
  return x;
}

} // namespace

int main(int argc, char **argv) {
  long threads = 1, mib = 1024, reps = 5;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--threads") {
      threads = parsePositive("--threads", next), ++i;
    } else if (a == "--mib") {
      mib = parsePositive("--mib", next), ++i;
    } else if (a == "--reps") {
      reps = parsePositive("--reps", next), ++i;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      std::printf("usage: llmc-membw [--threads N] [--mib M] [--reps R] [--json]\n"
                  "Reads M MiB (default 1024) R times (default 5) on N threads "
                  "(default 1), as one stream, as 8 streams side by side and as 8 "
                  "with prefetch, and prints the best rep's read bandwidth in GB/s "
                  "(the best of the three, then each).\n");
      return 0;
    } else {
      usage(("unknown argument '" + a + "'").c_str());
    }
  }
  const size_t words = static_cast<size_t>(mib) * (1 << 20) / 8;
  uint64_t *buf = static_cast<uint64_t *>(std::aligned_alloc(64, words * 8));
  if (!buf) {
    usage("cannot allocate the buffer");
  }
  // Each thread writes its own part first (pages land near it).
  const size_t part = words / threads / 32 * 32;
  auto runAll = [&](auto fn) {
    std::vector<std::thread> ts;
    for (long t = 1; t < threads; ++t) {
      ts.emplace_back(fn, t);
    }
    fn(0);
    for (auto &t : ts) {
      t.join();
    }
  };
  runAll([&](long t) {
    for (size_t i = 0; i < part; ++i) {
      buf[t * part + i] = i * 0x9E3779B97F4A7C15ull + t;
    }
  });
  std::vector<uint64_t> sink(static_cast<size_t>(threads));
  // The three ways, interleaved rep by rep so a slow spell of the machine
  // does not fall on one of them only.
  const size_t seg = part / kStreams / 8 * 8;
  double best[3] = {0.0, 0.0, 0.0};
  for (long r = 0; r < reps; ++r) {
    for (int way = 0; way < 3; ++way) {
      auto t0 = std::chrono::steady_clock::now();
      runAll([&](long t) {
        sink[t] ^= way == 0 ? sumWords(buf + t * part, part)
                            : sumStreams(buf + t * part, part, way == 2);
      });
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const size_t words = way == 0 ? part : seg * kStreams;
      best[way] = std::max(best[way], static_cast<double>(words * threads * 8) / s / 1e9);
    }
  }
  const double top = std::max({best[0], best[1], best[2]});
  uint64_t all = 0;
  for (uint64_t v : sink) {
    all ^= v;
  }
  if (json) {
    std::printf("{\"threads\": %ld, \"mib\": %ld, \"reps\": %ld, \"read_gb_s\": %.2f, "
                "\"one_stream_gb_s\": %.2f, \"streams_gb_s\": %.2f, "
                "\"streams_prefetch_gb_s\": %.2f, \"check\": %llu}\n",
                threads, mib, reps, top, best[0], best[1], best[2],
                static_cast<unsigned long long>(all & 1));
  } else {
    std::printf("read bandwidth: %.2f GB/s (%ld thread%s, %ld MiB, best of %ld; one stream "
                "%.2f, %zu streams %.2f, with prefetch %.2f)\n",
                top, threads, threads == 1 ? "" : "s", mib, reps, best[0], kStreams,
                best[1], best[2]);
  }
  std::free(buf);
  return 0;
}
