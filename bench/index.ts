// `npm run bench`: runs every bench file in turn; each prints its own figures.
export const BENCHES = ["./engine.ts", "./clh.ts", "./oci.ts", "./vm.ts", "./persist.ts", "./protocol.ts", "./network.ts", "./podman.ts", "./cri.ts", "./footprint.ts"];

for (const file of BENCHES) {
  console.log(`== bench ${file}`);
  await import(file);
}
