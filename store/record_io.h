#pragma once

// Reading block records (store/block_format.h) out of a file, for every
// store that keeps them in files: the disk store's segments and the swap
// file. Which file and where is the store's business; this is the IO and the
// checks.

#include <cstdint>
#include <string>
#include <string_view>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "src/base/ref_ptr.h"
#include "src/base/status.h"
#include "store/block_store.h"
#include "store/env.h"

namespace keyfs::record_io {

// This thread's buffer for encoding and reading records. It keeps its size:
// a fresh allocation of a block's size is an mmap of fresh pages (glibc's
// threshold, fuse/main.cc), and their page faults cost more than the copy.
std::string& Scratch();

// The `size` bytes at `offset` of `file`, in Scratch(): valid until this
// thread's next use of it. EIO naming `place` when the file ends first.
Result<std::string_view> Read(const RandomAccessFile& file, uint64_t offset, uint32_t size,
                              const std::string& place);

// Bytes [offset, offset + length) of block `id`, whose raw record
// (block_format::RawRecordSize(block_length) bytes) is at `record_offset` of
// `file`: only the chunks that hold the range are read, in one pread, and
// checked (their CRCs name the block, so the header is not read). EIO naming
// `place` on a mismatch.
Result<RefPtr<BlockBuffer>> ReadRange(const RandomAccessFile& file, uint64_t record_offset,
                                      const BlockId& id, uint32_t block_length, uint32_t offset,
                                      uint32_t length, MemoryAccountant* accountant,
                                      const std::string& place);

}  // namespace keyfs::record_io
