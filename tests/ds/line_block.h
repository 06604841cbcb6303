// Line-aligned memory filled with one byte value, for a ds structure the test builds in place;
// freed at the end of its scope.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>

namespace corepool::ds_test {

struct line_block {
  line_block(size_t bytes, unsigned char fill) : mem(::operator new (bytes, std::align_val_t{64})) {
    std::memset(mem, fill, bytes);
  }
  ~line_block() { ::operator delete (mem, std::align_val_t{64}); }
  line_block(const line_block &) = delete;
  line_block &operator=(const line_block &) = delete;
  void *const mem;
};

}  // namespace corepool::ds_test
