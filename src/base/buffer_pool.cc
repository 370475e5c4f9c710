#include "src/base/buffer_pool.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include "src/base/heap_size.h"
#include "src/base/memory_accountant.h"

namespace keyfs {

BufferPool::BufferPool(MemoryAccountant* accountant, uint64_t max_bytes)
    : accountant_(accountant), max_bytes_(max_bytes) {}

BufferPool::~BufferPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.Signal();
  if (prefault_thread_.joinable()) prefault_thread_.join();
  Trim(UINT64_MAX);
}

namespace {

// Faults in every page of [memory, memory + bytes) for writing, as the first
// write would: one madvise (Linux 5.14+), or a write to each page where that
// is not offered.
void FaultIn(void* memory, size_t bytes) {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(memory);
  uintptr_t end = begin + bytes;
  uintptr_t aligned = (begin + page - 1) & ~(page - 1);
  // The bytes are nobody's yet: writing a zero changes nothing anyone sees.
  static_cast<volatile char*>(memory)[0] = 0;
#ifdef MADV_POPULATE_WRITE
  if (aligned >= end ||
      madvise(reinterpret_cast<void*>(aligned), end - aligned, MADV_POPULATE_WRITE) == 0) {
    return;
  }
  // Only where the kernel does not know the advice (before 5.14); any other
  // failure (no memory) leaves the pages to the first write, as without us.
  if (errno != EINVAL) return;
#endif
  for (uintptr_t p = aligned; p < end; p += page) *reinterpret_cast<volatile char*>(p) = 0;
}

}  // namespace

void BufferPool::KeepReady(size_t bytes, size_t count) {
  if (bytes < kMinBytes || count == 0) return;
  MutexLock lock(&mu_);
  if (FindReady(bytes)) return;
  ReadySize& size = ready_.emplace_back(ReadySize{bytes, count});
  for (const Idle& idle : idle_) size.idle += idle.bytes == bytes;
  if (!prefault_thread_.joinable()) prefault_thread_ = std::thread([this] { PrefaultMain(); });
}

BufferPool::ReadySize* BufferPool::FindReady(size_t bytes) {
  for (ReadySize& size : ready_) {
    if (size.bytes == bytes) return &size;
  }
  return nullptr;
}

const BufferPool::ReadySize* BufferPool::FindReady(size_t bytes) const {
  return const_cast<BufferPool*>(this)->FindReady(bytes);
}

bool BufferPool::KeepsReady(size_t bytes) const {
  MutexLock lock(&mu_);
  return FindReady(bytes) != nullptr;
}

bool BufferPool::HasRoomFor(size_t bytes) const {
  uint64_t chunk = HeapChunk(bytes);
  return idle_bytes_ + chunk <= max_bytes_ && accountant_->Used() + chunk <= accountant_->limit();
}

BufferPool::ReadySize* BufferPool::NextToMake() {
  if (stopping_) return nullptr;
  for (ReadySize& size : ready_) {
    if (!size.wanted || size.idle >= size.target) continue;
    // Room beside everything charged, idle buffers included: a buffer made
    // ahead never takes a block's room. A size without room leaves the
    // others their chance.
    if (HasRoomFor(size.bytes)) return &size;
  }
  return nullptr;
}

void BufferPool::PrefaultMain() {
  pthread_setname_np(pthread_self(), "keyfs-prefault");
  for (;;) {
    size_t bytes;
    {
      MutexLock lock(&mu_);
      ReadySize* next;
      while (!(next = NextToMake()) && !stopping_) wake_.Wait(&mu_);
      if (stopping_) return;
      bytes = next->bytes;
    }
    // The slow part, outside the lock: the kernel zeroes the pages here
    // rather than under the loop thread's copy. Memory is optional here: no
    // memory, no buffer made ahead (and no end of the daemon).
    void* memory = ::operator new(bytes, std::nothrow);
    if (!memory) {
      MutexLock lock(&mu_);
      if (!stopping_) wake_.Wait(&mu_);  // until the next Take asks again
      continue;
    }
    FaultIn(memory, bytes);
    bool kept;
    {
      MutexLock lock(&mu_);
      // Again: whatever was charged meanwhile came first.
      kept = !stopping_ && HasRoomFor(bytes);
      if (kept) {
        idle_.push_back({memory, bytes});
        idle_bytes_ += HeapChunk(bytes);
        if (ReadySize* size = FindReady(bytes)) ++size->idle;
        ++prefaulted_total_;
        accountant_->Charge(MemoryComponent::kPool, HeapChunk(bytes));
      }
    }
    if (!kept) ::operator delete(memory);
  }
}

void* BufferPool::Take(size_t bytes, MemoryComponent user) {
  if (bytes < kMinBytes) return nullptr;
  MutexLock lock(&mu_);
  for (size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i].bytes != bytes) continue;
    void* memory = idle_[i].memory;
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    idle_bytes_ -= HeapChunk(bytes);
    accountant_->Release(MemoryComponent::kPool, HeapChunk(bytes));
    accountant_->Charge(user, HeapChunk(bytes));
    if (ReadySize* size = FindReady(bytes)) {
      --size->idle;
      // Below its target: the thread makes the next one while this is used.
      if (NextToMake()) wake_.Signal();
    }
    return memory;
  }
  if (ReadySize* size = FindReady(bytes)) {
    size->wanted = true;
    if (NextToMake()) wake_.Signal();
  }
  return nullptr;
}

bool BufferPool::Give(void* memory, size_t bytes, MemoryComponent user) {
  if (bytes < kMinBytes) return false;
  MutexLock lock(&mu_);
  if (idle_bytes_ + HeapChunk(bytes) > max_bytes_) return false;
  idle_.push_back({memory, bytes});
  idle_bytes_ += HeapChunk(bytes);
  if (ReadySize* size = FindReady(bytes)) ++size->idle;
  accountant_->Release(user, HeapChunk(bytes));
  accountant_->Charge(MemoryComponent::kPool, HeapChunk(bytes));
  return true;
}

void BufferPool::Trim(uint64_t bytes) {
  std::vector<Idle> freed;
  {
    MutexLock lock(&mu_);
    uint64_t total = 0;
    // The oldest first: the least likely to be reused soon.
    size_t n = 0;
    while (n < idle_.size() && total < bytes) {
      if (ReadySize* size = FindReady(idle_[n].bytes)) --size->idle;
      total += HeapChunk(idle_[n++].bytes);
    }
    freed.assign(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(n));
    idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(n));
    idle_bytes_ -= total;
    accountant_->Release(MemoryComponent::kPool, total);
  }
  for (const Idle& idle : freed) ::operator delete(idle.memory);
}

void BufferPool::SetMaxBytes(uint64_t max_bytes) {
  uint64_t excess = 0;
  {
    MutexLock lock(&mu_);
    max_bytes_ = max_bytes;
    if (idle_bytes_ > max_bytes) excess = idle_bytes_ - max_bytes;
  }
  if (excess > 0) Trim(excess);
}

uint64_t BufferPool::prefaulted_total() const {
  MutexLock lock(&mu_);
  return prefaulted_total_;
}

uint64_t BufferPool::idle_bytes() const {
  MutexLock lock(&mu_);
  return idle_bytes_;
}

}  // namespace keyfs
