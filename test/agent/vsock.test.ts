import { describe, expect, test } from "vitest";
import { acceptConnection, closeFd, listenVsock } from "../../lib/sys/index.ts";

// The guest end of a vsock agent channel. This host has AF_VSOCK but no
// transport to connect through (no vhost-vsock, no loopback), so what can be
// checked here is the address layout: bind, listen, accept with nothing
// pending, and a second bind of the same port refused by name.
let skip: string | undefined;
try {
  closeFd(listenVsock(61_000));
} catch (e) {
  skip = `AF_VSOCK unavailable here: ${(e as Error).message}`;
  console.log(`test/agent/vsock: skipped: ${skip}`);
}

describe.skipIf(!!skip)("vsock listener", () => {
  test("binds a port for any CID, accepts nothing yet, refuses the same port twice", () => {
    const fd = listenVsock(61_001);
    try {
      expect(acceptConnection(fd)).toBeUndefined();
      expect(() => listenVsock(61_001)).toThrow(/bind vsock port 61001/);
    } finally {
      closeFd(fd);
    }
    closeFd(listenVsock(61_001)); // free again once closed
  });
});
