// layout.cu -- NCHW <-> NHWC at the backend's entry and exit (inside the timed region).
//
// A batched 2-D transpose through a 32x33 shared-memory tile: reads and writes both coalesced.
//   nchw_to_nhwc: per image, (C, HW) -> (HW, C);  nhwc_to_nchw: per image, (HW, C) -> (C, HW).
// grid = (ceil(cols/32), ceil(rows/32), N), block = (32, 8); rows x cols is the source matrix.
//
// nchw_to_nhwc_smallc: the network input (C = 3). With C <= 4 the 32x32 tile above is 29/32 empty:
// one block per 32 pixels x 3 channels, 400k blocks at batch 256; ncu (H100, base clocks) measured
// 1.00 ms for it at batch 256 = 8.7% of DRAM peak. Here one thread per pixel reads its C values
// (coalesced per plane) and writes C consecutive floats; grid-stride. Expected: ~0.1-0.15 ms at
// batch 256 (308 MB at ~2.5 TB/s).

#include <cuda_runtime.h>

extern "C" __global__ void __launch_bounds__(256)
transpose_batched(const float* __restrict__ x, float* __restrict__ y, int rows, int cols) {
    __shared__ float tile[32][33];
    const long long off = (long long)blockIdx.z * rows * cols;
    const int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int i = threadIdx.y; i < 32; i += 8) {
        const int r = r0 + i, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[i][threadIdx.x] = x[off + (long long)r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += 8) {
        const int c = c0 + i, r = r0 + threadIdx.x;  // y is (cols, rows)
        if (r < rows && c < cols) y[off + (long long)c * rows + r] = tile[threadIdx.x][i];
    }
}

// grid-stride over N*HW pixels; block 256. x: (N, C, HW), y: (N, HW, C), C <= 4.
extern "C" __global__ void __launch_bounds__(256)
nchw_to_nhwc_smallc(const float* __restrict__ x, float* __restrict__ y, int C, long long HW, long long pixels) {
    for (long long p = blockIdx.x * 256LL + threadIdx.x; p < pixels; p += (long long)gridDim.x * 256LL) {
        const long long n = p / HW, i = p - n * HW;
        const float* src = x + n * C * HW + i;
        float* dst = y + p * C;
        for (int c = 0; c < C; ++c) dst[c] = src[(long long)c * HW];
    }
}
