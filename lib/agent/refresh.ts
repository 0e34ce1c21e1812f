import { ErrorCode, HuskError } from "../core/index.ts";
import { SysError, realtimeNs, reseedRandom, setRealtimeNs } from "../sys/index.ts";

// A guest restored from a saved memory image wakes with the clock it was
// saved with and the random pool every VM from that image shares. The host
// tells it the time and gives it entropy; the step taken is returned.
export function refreshGuest(hostNs: bigint, entropy: Uint8Array): bigint {
  try {
    let stepped = 0n;
    if (hostNs > 0n) {
      stepped = hostNs - realtimeNs();
      setRealtimeNs(hostNs);
    }
    if (entropy.length) reseedRandom(entropy);
    return stepped;
  } catch (e) {
    if (e instanceof SysError) throw new HuskError(`refresh of the guest: ${e.message}`, { code: ErrorCode.Internal });
    throw e;
  }
}
