// layout.cu -- NCHW <-> NHWC at the backend's entry and exit (inside the timed region).
//
// A batched 2-D transpose through a 32x33 shared-memory tile: reads and writes both coalesced.
//   nchw_to_nhwc: per image, (C, HW) -> (HW, C);  nhwc_to_nchw: per image, (HW, C) -> (C, HW).
// grid = (ceil(cols/32), ceil(rows/32), N), block = (32, 8); rows x cols is the source matrix.

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
