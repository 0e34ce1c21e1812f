// /proc/self/mountinfo by mount point: field 4 the mount point, 5 the
// per-mount options, 6.. optional tags up to "-", then type, source and the
// filesystem's own options.
export interface MountEntry {
  options: string[];
  tags: string[];
  type: string;
  superOptions: string[];
}

export function mountsOf(mountinfo: string): Map<string, MountEntry> {
  const out = new Map<string, MountEntry>();
  for (const line of mountinfo.trim().split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    out.set(f[4]!, { options: f[5]!.split(","), tags: f.slice(6, sep), type: f[sep + 1]!, superOptions: (f[sep + 3] ?? "").split(",") });
  }
  return out;
}
