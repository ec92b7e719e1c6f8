// pdl.cuh -- programmatic dependent launch (PDL) for the kernels of the batch > 1 plans (session 8).
//
// The host launches a kernel whose name is in impls/_custom_kernels.py PDL_READY with cuLaunchKernelEx +
// PROGRAMMATIC_STREAM_SERIALIZATION when the backend's pdl option is on: the kernel's blocks may then be scheduled
// before the previous kernel in the stream has finished. MBV2_PDL_ENTRY() is therefore the FIRST statement of such a
// kernel: griddepcontrol.wait blocks until the previous grid has completed and its memory is visible (nothing is
// read or written before it, so the order of memory effects is that of plain launches), then
// griddepcontrol.launch_dependents lets the next kernel's blocks be scheduled once every block of this grid has
// started (they wait in their own entry; all of this grid's blocks are resident by then, so they take no slot
// this grid still needs). What it saves: the launch latency and block ramp-up at each kernel boundary. Without the
// launch attribute both instructions are no-ops; before sm_90 they are not emitted.
#pragma once

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define MBV2_PDL_ENTRY() asm volatile("griddepcontrol.wait;\n\tgriddepcontrol.launch_dependents;\n" ::: "memory")
#else
#define MBV2_PDL_ENTRY() ((void)0)
#endif
