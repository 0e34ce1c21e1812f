import { defineCommand } from "citty";
import { HuskError } from "../lib/core/index.ts";
import { buildGuest, listGuestVersions } from "../lib/guest/index.ts";
import { getSettings } from "./globals.ts";

// Progress goes to a terminal only: scripts and CI logs get the result line.
function progress(): ((line: string) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  const t0 = Date.now();
  return (line) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
}

const build = defineCommand({
  meta: { name: "build", description: "Assemble guest assets (kernel, initramfs, virtiofsd) from Debian packages" },
  args: {
    dest: { type: "string", description: "guest dir to build into (default: settings guest.dir, /var/lib/husk/guest)" },
    cache: { type: "string", description: ".deb cache (default: <dest>/.cache)" },
    agent: { type: "string", description: "husk binary the guest runs as its agent (default: this husk, or dist/husk from source)" },
    "agent-in": { type: "string", description: "share (served over virtio-fs, default) or initrd" },
    json: { type: "boolean", description: "print the manifest as JSON" },
  },
  async run({ args }) {
    const agentIn = args["agent-in"] ?? "share";
    if (agentIn !== "share" && agentIn !== "initrd") throw new HuskError(`--agent-in must be share or initrd, not ${JSON.stringify(agentIn)}`);
    const dest = args.dest ?? getSettings().guestDir;
    const r = await buildGuest({ dest, cacheDir: args.cache, agentBinary: args.agent, agentIn, progress: progress() });
    if (args.json) return console.log(JSON.stringify({ dir: r.dir, reused: r.reused, downloaded: r.downloaded, manifest: r.manifest }, null, 2));
    const fetched = r.downloaded.length ? `downloaded ${r.downloaded.join(", ")}` : "all packages from the cache";
    console.log(`guest assets ${r.manifest.version} ${r.reused ? "already present" : "built"} in ${r.dir} (kernel ${r.manifest.kernelRelease}; ${fetched})`);
  },
});

const list = defineCommand({
  meta: { name: "list", description: "List guest asset versions, newest first" },
  args: { json: { type: "boolean", description: "print JSON" } },
  run({ args }) {
    const versions = listGuestVersions(getSettings().guestDir);
    if (args.json) return console.log(JSON.stringify(versions, null, 2));
    for (const m of versions) console.log(`${m.version}\tkernel ${m.kernelRelease}\thusk ${m.huskVersion} (${m.huskCommit})\tbuilt ${m.builtAt}`);
  },
});

export default defineCommand({
  meta: { name: "guest", description: "Build and list the micro-VM guest assets" },
  subCommands: { build, list },
});
