// The error convention of every C shim here: a function returns -1 with a message copied
// into the caller's `err` buffer, and no C++ exception ever crosses into Rust.
#pragma once

#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>

namespace gadms {

// Copies `message` into `err` (truncated to `len`) and returns -1.
inline int fail(char* err, size_t len, const std::string& message) {
  if (err != nullptr && len > 0) {
    std::snprintf(err, len, "%s", message.c_str());
  }
  return -1;
}

// Runs `body`, turning any exception into -1 and its message.
template <typename F>
int guarded(char* err, size_t len, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return fail(err, len, e.what());
  } catch (...) {
    return fail(err, len, "unknown C++ exception");
  }
}

}  // namespace gadms
