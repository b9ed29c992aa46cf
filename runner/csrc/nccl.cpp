// NCCL, the collective library of CUDA tensors, behind a few C functions: a communicator
// from a unique id, and all-reduce (sum), all-gather and broadcast enqueued on torch's current
// stream of the device, so they order with the kernels around them as PyTorch's own
// ProcessGroupNCCL does.
//
// NCCL is opened at run time (`dlopen`), not linked: a machine without it still runs
// everything else, and asking for it there is an error that says so. The few declarations
// below are NCCL's stable C API (nccl.h, 2.x); nccl.h itself is not included because it
// pulls in the CUDA runtime headers, which the PyPI wheels do not ship complete. The stream
// comes through c10's device-guard interface, so no CUDA header is needed either.
//
// Every function catches every C++ exception and reports -1 with the message in `err`.

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "guarded.h"

namespace {

using ncclComm_t = void*;
using cudaStream_t = void*;
struct ncclUniqueId {
  char internal[128];
};
using ncclResult_t = int;  // 0 = ncclSuccess
constexpr int ncclSum = 0;

using GetUniqueId = ncclResult_t (*)(ncclUniqueId*);
using CommInitRank = ncclResult_t (*)(ncclComm_t*, int, ncclUniqueId, int);
using CommDestroy = ncclResult_t (*)(ncclComm_t);
using AllReduce = ncclResult_t (*)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t);
using AllGather = ncclResult_t (*)(const void*, void*, size_t, int, ncclComm_t, cudaStream_t);
using Broadcast = ncclResult_t (*)(const void*, void*, size_t, int, int, ncclComm_t, cudaStream_t);
using GetErrorString = const char* (*)(ncclResult_t);

struct Nccl {
  GetUniqueId get_unique_id = nullptr;
  CommInitRank comm_init_rank = nullptr;
  CommDestroy comm_destroy = nullptr;
  AllReduce all_reduce = nullptr;
  AllGather all_gather = nullptr;
  Broadcast broadcast = nullptr;
  GetErrorString error_string = nullptr;
};

Nccl nccl;

using gadms::fail;
using gadms::guarded;

// 0, or -1 with NCCL's description of `result` and what was being done.
int check(ncclResult_t result, const char* what, char* err, size_t len) {
  if (result == 0) {
    return 0;
  }
  return fail(err, len, std::string(what) + ": " + nccl.error_string(result));
}

// gadms element codes (0 f32, 1 f64, 2 i64, 3 i32, 4 u8) as ncclDataType_t.
int nccl_type(int dtype) {
  switch (dtype) {
    case 0:
      return 7;  // ncclFloat32
    case 1:
      return 8;  // ncclFloat64
    case 2:
      return 4;  // ncclInt64
    case 3:
      return 2;  // ncclInt32
    default:
      return 1;  // ncclUint8
  }
}

const c10::impl::DeviceGuardImplInterface* cuda() {
  return c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
}

// torch's current stream on CUDA device `device`.
cudaStream_t current_stream(int device) {
  const auto guard = cuda();
  const auto d = c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device));
  return guard->getStreamNativeHandle(guard->getStream(d));
}

template <typename T>
bool symbol(void* library, const char* name, T& out) {
  out = reinterpret_cast<T>(dlsym(library, name));
  return out != nullptr;
}

}  // namespace

extern "C" {

// Opens NCCL: the library torch already loaded when there is one, else `path`. Returns 0 or
// -1.
int gadms_nccl_load(const char* path, char* err, size_t len) {
  return guarded(err, len, [&] {
    if (nccl.all_reduce != nullptr) {
      return 0;
    }
    void* library = dlopen("libnccl.so.2", RTLD_NOW | RTLD_GLOBAL);
    if (library == nullptr) {
      library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    }
    if (library == nullptr) {
      return fail(err, len, std::string("cannot open NCCL (libnccl.so.2, or ") + path + "): " +
                                dlerror());
    }
    Nccl loaded;
    if (!symbol(library, "ncclGetUniqueId", loaded.get_unique_id) ||
        !symbol(library, "ncclCommInitRank", loaded.comm_init_rank) ||
        !symbol(library, "ncclCommDestroy", loaded.comm_destroy) ||
        !symbol(library, "ncclAllReduce", loaded.all_reduce) ||
        !symbol(library, "ncclAllGather", loaded.all_gather) ||
        !symbol(library, "ncclBroadcast", loaded.broadcast) ||
        !symbol(library, "ncclGetErrorString", loaded.error_string)) {
      return fail(err, len, "the NCCL library found lacks a function gadms calls (NCCL 2.x needed)");
    }
    nccl = loaded;
    return 0;
  });
}

// A new unique id (128 bytes) for rank 0 to hand to the others.
int gadms_nccl_unique_id(char* out, char* err, size_t len) {
  return guarded(err, len, [&] {
    ncclUniqueId id;
    if (check(nccl.get_unique_id(&id), "ncclGetUniqueId", err, len) != 0) {
      return -1;
    }
    std::memcpy(out, id.internal, sizeof(id.internal));
    return 0;
  });
}

// Joins the communicator of `world` ranks named by `id` as `rank`, on CUDA device `device`.
int gadms_nccl_init(const char* id, int world, int rank, int device, void** comm, char* err,
                    size_t len) {
  return guarded(err, len, [&] {
    ncclUniqueId unique;
    std::memcpy(unique.internal, id, sizeof(unique.internal));
    cuda()->setDevice(c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device)));
    return check(nccl.comm_init_rank(comm, world, unique, rank), "ncclCommInitRank", err, len);
  });
}

void gadms_nccl_destroy(void* comm) {
  if (comm != nullptr && nccl.comm_destroy != nullptr) {
    nccl.comm_destroy(comm);
  }
}

// In-place sum of `count` elements (`dtype` as above) at `data` on `device`.
int gadms_nccl_all_reduce_sum(void* comm, void* data, size_t count, int dtype, int device,
                              char* err, size_t len) {
  return guarded(err, len, [&] {
    return check(nccl.all_reduce(data, data, count, nccl_type(dtype), ncclSum, comm,
                                 current_stream(device)),
                 "ncclAllReduce", err, len);
  });
}

// Every rank's `bytes` bytes at `in`, concatenated in rank order into `out`.
int gadms_nccl_all_gather(void* comm, const void* in, void* out, size_t bytes, int device,
                          char* err, size_t len) {
  return guarded(err, len, [&] {
    return check(nccl.all_gather(in, out, bytes, nccl_type(4), comm, current_stream(device)),
                 "ncclAllGather", err, len);
  });
}

// Rank `root`'s `bytes` bytes at `data`, copied into `data` on every rank.
int gadms_nccl_broadcast(void* comm, void* data, size_t bytes, int root, int device, char* err,
                         size_t len) {
  return guarded(err, len, [&] {
    return check(nccl.broadcast(data, data, bytes, nccl_type(4), root, comm,
                                current_stream(device)),
                 "ncclBroadcast", err, len);
  });
}
}
