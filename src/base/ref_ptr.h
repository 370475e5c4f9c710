#pragma once

// RefPtr<T>: an owning pointer to an object that counts its own references
// (T::AddRef() / T::Unref(), thread-safe), like boost::intrusive_ptr. Unlike
// std::shared_ptr there is no control block: the count lives in the object,
// so an object and its payload can be one allocation (BlockBuffer).

#include <cstddef>
#include <type_traits>
#include <utility>

namespace keyfs {

template <typename T>
class RefPtr {
 public:
  RefPtr() = default;
  RefPtr(std::nullptr_t) {}  // NOLINT: as shared_ptr
  // Takes a new reference to `object` (which may be null).
  explicit RefPtr(T* object) : object_(object) {
    if (object_) object_->AddRef();
  }
  RefPtr(const RefPtr& other) : RefPtr(other.object_) {}
  RefPtr(RefPtr&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  // RefPtr<Derived> or RefPtr<T> -> RefPtr<const T>.
  template <typename U, typename = std::enable_if_t<std::is_convertible_v<U*, T*>>>
  RefPtr(const RefPtr<U>& other) : RefPtr(other.get()) {}  // NOLINT: as shared_ptr
  ~RefPtr() {
    if (object_) object_->Unref();
  }
  RefPtr& operator=(RefPtr other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }

  T* get() const { return object_; }
  T* operator->() const { return object_; }
  T& operator*() const { return *object_; }
  explicit operator bool() const { return object_ != nullptr; }
  // The number of RefPtrs to the object (0 for null).
  unsigned use_count() const { return object_ ? object_->ref_count() : 0; }

 private:
  T* object_ = nullptr;
};

}  // namespace keyfs
