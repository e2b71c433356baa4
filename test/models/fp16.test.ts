import { test } from "node:test";
import assert from "node:assert/strict";
import { bfloat16ToFloat, floatToHalf, halfToFloat } from "../../src/models/fp16.js";

test("every float16 value survives float16 → number → float16", () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = halfToFloat(h);
    if (Number.isNaN(x)) assert.equal(floatToHalf(x) & 0x7e00, 0x7e00, `NaN ${h.toString(16)}`);
    else assert.equal(floatToHalf(x), h, `0x${h.toString(16)} (${x})`);
  }
});

test("float32 → float16 rounds to nearest, ties to even, with subnormals and overflow", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00], // rounds up past the largest finite half
    [1e10, 0x7c00],
    [-0, 0x8000],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even is 0
    [3 * 2 ** -26, 0x0001],
    [1 + 2 ** -11, 0x3c00], // tie: keep the even mantissa
    [1 + 3 * 2 ** -11, 0x3c02], // tie: round up to the even mantissa
    [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal rounds up into the normals
  ];
  for (const [x, h] of cases) assert.equal(floatToHalf(x), h, `${x}`);
});

test("bfloat16 is the high half of a float32", () => {
  assert.equal(bfloat16ToFloat(0x3f80), 1);
  assert.equal(bfloat16ToFloat(0xc040), -3);
  assert.equal(bfloat16ToFloat(0x0000), 0);
});
