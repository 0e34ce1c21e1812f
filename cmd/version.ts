import { defineCommand } from "citty";
import { COMMIT, OCI_SPEC_VERSION, VERSION } from "../lib/core/index.ts";

export const versionText = (): string =>
  `husk version ${VERSION}\ncommit: ${COMMIT}\nspec: ${OCI_SPEC_VERSION}`;

export async function versionInfo() {
  const { persistFormats } = await import("../lib/persist/index.ts");
  const { PROTOCOL_VERSION, CAPABILITIES } = await import("../lib/protocol/capabilities.ts");
  const protocol = { version: PROTOCOL_VERSION, capabilities: [...CAPABILITIES] };
  return { version: VERSION, commit: COMMIT, ociSpec: OCI_SPEC_VERSION, persist: persistFormats(), protocol };
}

export default defineCommand({
  meta: { name: "version", description: "Print version, commit, OCI spec and on-disk format versions" },
  args: { json: { type: "boolean", description: "print JSON" } },
  async run({ args }) {
    console.log(args.json ? JSON.stringify(await versionInfo(), null, 2) : versionText());
  },
});
