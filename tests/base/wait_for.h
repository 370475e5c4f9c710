#pragma once

// WaitFor: for tests of work another thread does on its own (the buffer
// pool's prefault thread): polls `done` every millisecond until it holds, or
// 10 s pass. A condition waited for, never a sleep in its place.

#include <chrono>
#include <thread>

namespace keyfs {

template <typename Done>
bool WaitFor(Done done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace keyfs
