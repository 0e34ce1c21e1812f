import { describe, expect, test } from "vitest";
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestRam } from "../lib/hypervisor/qemu/ram.ts";

// A VM template's RAM file becomes a new VM's memory file: the same bytes at
// the same offsets, with holes and zero pages left as holes (host memory a
// restored VM does not take until its guest writes there).
describe("guest RAM filled from a template's RAM file", () => {
  const MiB = 1024 * 1024;
  function ramFile(sizeMiB: number): string {
    const path = join(mkdtempSync(join(tmpdir(), "husk-ram-")), "vm.ram");
    const fd = openSync(path, "w");
    ftruncateSync(fd, sizeMiB * MiB);
    const pages = Buffer.alloc(3 * 4096 + 100);
    pages.fill(7, 0, 4096).fill(9, 8192); // a page of 7s, a zero page, then 9s into a fourth page
    writeSync(fd, pages, 0, pages.length, MiB);
    writeSync(fd, Buffer.from("end"), 0, 3, sizeMiB * MiB - 3);
    closeSync(fd);
    return path;
  }

  test("the same bytes; the zero page and the holes take no memory", () => {
    const src = ramFile(8);
    const fd = guestRam(8, src);
    try {
      const mem = `/proc/self/fd/${fd}`;
      expect(readFileSync(mem).equals(readFileSync(src))).toBe(true);
      expect(statSync(mem).blocks * 512).toBe(4 * 4096); // 7s, 9s, the rest of the 9s, "end"
    } finally {
      closeSync(fd);
    }
  });

  test("a RAM file of another size than the VM's is refused by name", () => {
    const src = ramFile(8);
    expect(() => guestRam(16, src)).toThrow(`${src} holds ${8 * MiB} bytes of guest RAM, not the 16 MiB the VM was saved with`);
  });

  test("without a RAM file: an empty memory file of the VM's size", () => {
    const fd = guestRam(4);
    try {
      expect([statSync(`/proc/self/fd/${fd}`).size, statSync(`/proc/self/fd/${fd}`).blocks]).toEqual([4 * MiB, 0]);
    } finally {
      closeSync(fd);
    }
  });
});
