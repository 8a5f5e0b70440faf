// Thread check of the pure C++ core (csrc/rangecoder.cpp, no Python): random tables,
// values and splits coded with encode_substreams / decode_substreams on 1 to 8 threads,
// damaged substreams, bad bounds and thread counts. Built with -fsanitize=thread by
// tools/sanitize_coder.sh; exits non-zero on a mismatch (ThreadSanitizer reports races).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "rangecoder.hpp"
#include "tables.hpp"

using namespace codec_rc;

static int fail(const char* what, int iter, const std::string& err) {
  std::printf("tsan_substreams: FAILED at iteration %d: %s %s\n", iter, what, err.c_str());
  return 1;
}

int main() {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 200; ++iter) {
    // Tables: 1..16 tables of 2..40 entries, random strictly increasing CDFs.
    const int64_t n_tables = 1 + int64_t(rng() % 16), stride = 40;
    std::vector<int32_t> cdfs(static_cast<size_t>(n_tables * stride), 0);
    std::vector<int32_t> lengths(static_cast<size_t>(n_tables)), offsets(static_cast<size_t>(n_tables));
    for (int64_t i = 0; i < n_tables; ++i) {
      const int64_t len = 2 + int64_t(rng() % (stride - 1));
      lengths[size_t(i)] = int32_t(len);
      offsets[size_t(i)] = int32_t(rng() % 41) - 20;
      int32_t* cdf = &cdfs[size_t(i * stride)];
      std::vector<int32_t> cuts;
      while (int64_t(cuts.size()) < len - 2) {
        const int32_t c = 1 + int32_t(rng() % 65535);
        bool dup = false;
        for (int32_t x : cuts) dup |= x == c;
        if (!dup) cuts.push_back(c);
      }
      std::sort(cuts.begin(), cuts.end());
      for (int64_t k = 0; k < len - 2; ++k) cdf[k + 1] = cuts[size_t(k)];
      cdf[len - 1] = int32_t(kTotal);
    }
    TableSet t;  // shared by all the threads below; its lookup tables are built by them, concurrently
    std::string err = t.assign(cdfs.data(), n_tables, stride, lengths.data(), offsets.data());
    if (!err.empty()) return fail("tables", iter, err);

    const int64_t n = int64_t(rng() % 20000);
    std::vector<int32_t> sym(static_cast<size_t>(n)), idx(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) {
      idx[size_t(k)] = int32_t(rng() % uint64_t(n_tables));
      sym[size_t(k)] = int32_t(rng() % 60) - 30;  // escapes included
    }
    const int64_t n_sub = 1 + int64_t(rng() % 24);
    std::vector<int64_t> bounds{0};
    for (int64_t j = 1; j < n_sub; ++j) bounds.push_back(n ? int64_t(rng() % uint64_t(n + 1)) : 0);
    bounds.push_back(n);
    std::sort(bounds.begin(), bounds.end());

    std::vector<std::vector<uint8_t>> ref;
    for (int64_t threads = 1; threads <= 8; threads *= 2) {
      std::vector<std::vector<uint8_t>> strings;
      err = encode_substreams(sym.data(), idx.data(), n, bounds.data(), int64_t(bounds.size()), t, threads, strings);
      if (!err.empty()) return fail("encode", iter, err);
      if (threads == 1) ref = strings;
      if (strings != ref) return fail("bytes depend on the thread count", iter, "");
      std::vector<const uint8_t*> data;
      std::vector<int64_t> sizes;
      for (const auto& s : strings) {
        data.push_back(s.data());
        sizes.push_back(int64_t(s.size()));
      }
      err = decode_substreams(data.data(), sizes.data(), idx.data(), n, bounds.data(), int64_t(bounds.size()), t, threads, out.data());
      if (!err.empty() || out != sym) return fail("round trip", iter, err);
      // Truncate the last non-empty substream by half: an error or a same-size result, never a crash.
      for (int64_t j = n_sub - 1; j >= 0; --j) {
        if (sizes[size_t(j)] > 0) {
          sizes[size_t(j)] /= 2;
          break;
        }
      }
      decode_substreams(data.data(), sizes.data(), idx.data(), n, bounds.data(), int64_t(bounds.size()), t, threads, out.data());
    }
    // Refused: a decreasing bound, a wrong last bound, no substream, bad thread counts.
    std::vector<std::vector<uint8_t>> strings;
    std::vector<int64_t> bad = bounds;
    bad.back() = n + 1;
    if (encode_substreams(sym.data(), idx.data(), n, bad.data(), int64_t(bad.size()), t, 2, strings).empty()) return fail("bad bound", iter, "");
    if (encode_substreams(sym.data(), idx.data(), n, bounds.data(), 1, t, 2, strings).empty()) return fail("one bound", iter, "");
    for (int64_t threads : {int64_t(0), int64_t(-1), kMaxThreads + 1}) {
      if (encode_substreams(sym.data(), idx.data(), n, bounds.data(), int64_t(bounds.size()), t, threads, strings).empty()) {
        return fail("bad thread count", iter, std::to_string(threads));
      }
    }
  }
  std::printf("tsan_substreams: 200 iterations, 1-8 threads: no mismatch\n");
  return 0;
}
