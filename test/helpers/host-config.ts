import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";

// podman/conmon and containerd's shim call the runtime without our flags or
// environment, so e2e tests set husk up the way an operator does: through
// /etc/husk/config.toml. The previous file (if any) is put back afterwards.
const PATH = "/etc/husk/config.toml";

export function installHostConfig(toml: string): () => void {
  const before = existsSync(PATH) ? readFileSync(PATH) : undefined;
  mkdirSync("/etc/husk", { recursive: true });
  writeFileSync(PATH, toml);
  return () => {
    if (before) writeFileSync(PATH, before);
    else rmSync(PATH, { force: true });
  };
}
