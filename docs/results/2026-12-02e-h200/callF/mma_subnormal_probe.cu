// One m16n8k16 fp16 mma: A = all x, B = all b (k = 16 products each), prints C[0] vs 16*x*b.
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdio>
__global__ void K(uint16_t xa, uint16_t xb, float* out) {
  uint32_t a = xa | (uint32_t(xa) << 16), b = xb | (uint32_t(xb) << 16);
  float c[4] = {0, 0, 0, 0};
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a), "r"(a), "r"(a), "r"(a), "r"(b), "r"(b));
  if (threadIdx.x == 0) out[0] = c[0];
}
static float H2F(uint16_t h) {
  __half x;
  *reinterpret_cast<uint16_t*>(&x) = h;
  return __half2float(x);
}
int main() {
  float* d;
  cudaMalloc(&d, 4);
  const uint16_t xs[] = {0x0001, 0x0003, 0x0030, 0x0300, 0x0200, 0x3C00};
  const uint16_t bs[] = {0x3C00, 0x1400, 0x0400, 0x0100, 0x0010, 0x0001, 0x3555};
  for (uint16_t x : xs)
    for (uint16_t b : bs) {
      K<<<1, 32>>>(x, b, d);
      float r;
      cudaMemcpy(&r, d, 4, cudaMemcpyDeviceToHost);
      const double e = 16.0 * H2F(x) * H2F(b);
      std::printf("x=%04x (%.3g) b=%04x (%.3g): mma %.6g exact %.6g rel %.2e\n", x, H2F(x), b,
                  H2F(b), r, e, e ? (r - e) / e : r);
    }
  return 0;
}
