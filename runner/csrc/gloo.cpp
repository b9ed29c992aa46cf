// Gloo (https://github.com/facebookincubator/gloo), the collective library PyTorch uses on
// CPUs, behind a few C functions: a rendezvous store (a shared folder or Redis), a full-mesh
// TCP context, and all-reduce (sum), all-gather, broadcast and barrier on host memory.
//
// Every function catches every C++ exception and reports it as -1 with the message copied
// into `err`, so none crosses into Rust. runner/build.rs builds this file into its own shared
// library, linked against libgloo, which gadms-run loads on first use (src/dist/gloo.rs).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <chrono>
#include <exception>
#include <memory>
#include <vector>

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/redis_store.h>
#include <gloo/transport/tcp/device.h>

#include "guarded.h"

struct gadms_gloo_store {
  std::shared_ptr<gloo::rendezvous::Store> store;
};

struct gadms_gloo_context {
  std::shared_ptr<gloo::rendezvous::Context> context;
};

namespace {

using gadms::fail;
using gadms::guarded;

std::chrono::milliseconds ms(int64_t timeout_ms) { return std::chrono::milliseconds(timeout_ms); }

// Sum all-reduce of `count` elements of type T at `data`, in place.
template <typename T>
void allreduce_sum(const std::shared_ptr<gloo::Context>& context, void* data, size_t count,
                   int64_t timeout_ms) {
  gloo::AllreduceOptions opts(context);
  opts.setOutput(static_cast<T*>(data), count);
  opts.setReduceFunction(
      static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<T>));
  opts.setTimeout(ms(timeout_ms));
  gloo::allreduce(opts);
}

}  // namespace

extern "C" {

// A store in the folder `path` (created by the caller), shared by every rank.
int gadms_gloo_file_store(const char* path, gadms_gloo_store** out, char* err, size_t len) {
  return guarded(err, len, [&] {
    *out = new gadms_gloo_store{std::make_shared<gloo::rendezvous::FileStore>(path)};
    return 0;
  });
}

// A store on the Redis server at `host`:`port`.
int gadms_gloo_redis_store(const char* host, int port, gadms_gloo_store** out, char* err,
                           size_t len) {
  return guarded(err, len, [&] {
    *out = new gadms_gloo_store{std::make_shared<gloo::rendezvous::RedisStore>(host, port)};
    return 0;
  });
}

void gadms_gloo_store_free(gadms_gloo_store* store) { delete store; }

int gadms_gloo_store_set(gadms_gloo_store* store, const char* key, const char* data,
                         size_t size, char* err, size_t len) {
  return guarded(err, len, [&] {
    store->store->set(key, std::vector<char>(data, data + size));
    return 0;
  });
}

// Waits up to `timeout_ms` for `key`, then hands out its value (free it with
// `gadms_gloo_free`). Returns 0, 1 when the key did not appear in time, or -1.
int gadms_gloo_store_get(gadms_gloo_store* store, const char* key, int64_t timeout_ms,
                         char** data, size_t* size, char* err, size_t len) {
  return guarded(err, len, [&] {
    try {
      store->store->wait({key}, ms(timeout_ms));
    } catch (const gloo::IoException& e) {
      // Both stores report an expired wait as an I/O error whose text says so.
      if (std::strstr(e.what(), "imeout") != nullptr) {
        return 1;
      }
      throw;
    }
    const std::vector<char> value = store->store->get(key);
    *size = value.size();
    *data = static_cast<char*>(std::malloc(value.empty() ? 1 : value.size()));
    if (*data == nullptr) {
      return fail(err, len, "out of memory");
    }
    std::memcpy(*data, value.data(), value.size());
    return 0;
  });
}

void gadms_gloo_free(char* data) { std::free(data); }

// Connects `rank` of `size` to every other rank over TCP, through `store`. The socket binds
// to the address of `hostname` or, when `iface` is not empty, of that network interface.
int gadms_gloo_connect(gadms_gloo_store* store, int rank, int size, const char* hostname,
                       const char* iface, int64_t timeout_ms, gadms_gloo_context** out,
                       char* err, size_t len) {
  return guarded(err, len, [&] {
    gloo::transport::tcp::attr attr;
    if (iface != nullptr && iface[0] != '\0') {
      attr.iface = iface;
    } else {
      attr.hostname = hostname;
    }
    auto device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(rank, size);
    context->setTimeout(ms(timeout_ms));
    context->connectFullMesh(*store->store, device);
    *out = new gadms_gloo_context{context};
    return 0;
  });
}

void gadms_gloo_context_free(gadms_gloo_context* context) { delete context; }

// In-place sum over the ranks of `count` elements at `data`. `dtype`: 0 f32, 1 f64, 2 i64,
// 3 i32.
int gadms_gloo_allreduce_sum(gadms_gloo_context* context, void* data, size_t count, int dtype,
                             int64_t timeout_ms, char* err, size_t len) {
  return guarded(err, len, [&] {
    const std::shared_ptr<gloo::Context> c = context->context;
    switch (dtype) {
      case 0:
        allreduce_sum<float>(c, data, count, timeout_ms);
        return 0;
      case 1:
        allreduce_sum<double>(c, data, count, timeout_ms);
        return 0;
      case 2:
        allreduce_sum<int64_t>(c, data, count, timeout_ms);
        return 0;
      case 3:
        allreduce_sum<int32_t>(c, data, count, timeout_ms);
        return 0;
      default:
        return fail(err, len, "unsupported element type for all-reduce");
    }
  });
}

// Every rank's `bytes` bytes at `in`, concatenated in rank order into `out` (size × bytes).
int gadms_gloo_allgather(gadms_gloo_context* context, const void* in, void* out, size_t bytes,
                         int64_t timeout_ms, char* err, size_t len) {
  return guarded(err, len, [&] {
    gloo::AllgatherOptions opts(context->context);
    opts.setInput(static_cast<char*>(const_cast<void*>(in)), bytes);
    opts.setOutput(static_cast<char*>(out), bytes * context->context->size);
    opts.setTimeout(ms(timeout_ms));
    gloo::allgather(opts);
    return 0;
  });
}

// Rank `root`'s `bytes` bytes at `data`, copied into `data` on every rank.
int gadms_gloo_broadcast(gadms_gloo_context* context, void* data, size_t bytes, int root,
                         int64_t timeout_ms, char* err, size_t len) {
  return guarded(err, len, [&] {
    gloo::BroadcastOptions opts(context->context);
    if (context->context->rank == root) {
      opts.setInput(static_cast<char*>(data), bytes);
    }
    opts.setOutput(static_cast<char*>(data), bytes);
    opts.setRoot(root);
    opts.setTimeout(ms(timeout_ms));
    gloo::broadcast(opts);
    return 0;
  });
}

int gadms_gloo_barrier(gadms_gloo_context* context, int64_t timeout_ms, char* err, size_t len) {
  return guarded(err, len, [&] {
    gloo::BarrierOptions opts(context->context);
    opts.setTimeout(ms(timeout_ms));
    gloo::barrier(opts);
    return 0;
  });
}
}
