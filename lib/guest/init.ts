// The guest's /init: a busybox sh script. It mounts the basics, loads the
// modules in the order resolved at build time, mounts the virtio-fs share and
// runs `husk agent` on the virtio-serial port named "agent".
//
// Kernel command line options it reads (the driver or a test sets them):
//   husk.mode=agent   (default) run the agent, again if it dies; power off when it stops
//   husk.mode=probe   print GUEST_PROBE_MARK on the console and power off at once
//   husk.mode=echo    echo every byte back on the agent port (tests, before an agent exists)
//   husk.mode=shell   a shell on the agent port (tests and debugging; the host owns the port)
// and husk.channel=<agent --channel> (default virtio-serial:agent; vsock:1024 under cloud-hypervisor).
import { RESIDENT_JSC_ENV } from "../core/index.ts";

export const GUEST_SHARE_TAG = "husk";
export const GUEST_SHARE_MOUNT = "/run/husk/shared";
export const AGENT_PORT_NAME = "agent";
// Inside the share: where the driver places the agent binary when it is not in the initramfs.
export const AGENT_IN_SHARE = ".husk/agent";
export const GUEST_PROBE_MARK = "husk-guest-probe-ok";
export const GUEST_READY_MARK = "husk-init: ready";
// The guest's init (pid 1) stays in the namespace that holds the VM's interfaces.
export const GUEST_NETNS = "/proc/1/ns/net";
// The OCI runtime the guest's agent runs containers with (lib/guest/build.ts packs it).
export const GUEST_OCI_RUNTIME = "crun";

export function initScript(kernelRelease: string): string {
  return `#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
# Nothing can pivot_root away from the kernel's rootfs, so an OCI runtime
# would have to chroot (--no-pivot), and crun then drops a bind mount's
# rshared. A bind of / moved over / is an ordinary mount it can pivot from.
if [ -z "$HUSK_REBOUND" ]; then
  mkdir -p /.root && mount --bind / /.root && cd /.root && mount --move . / && HUSK_REBOUND=1 exec chroot . /init
  echo "husk-init: cannot rebind / over itself: containers run without pivot_root" >/dev/console
fi
unset HUSK_REBOUND
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Seconds since the kernel started, for the boot breakdown (bench/vm.ts).
stamp() { read -r up _ </proc/uptime; echo "husk-init: at $up $1" >/dev/console; }
stamp start
mode=agent
channel=virtio-serial:${AGENT_PORT_NAME}
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    husk.mode=*) mode="\${arg#husk.mode=}" ;;
    husk.channel=*) channel="\${arg#husk.channel=}" ;;
  esac
done
if [ "$mode" = probe ]; then echo "${GUEST_PROBE_MARK}" >/dev/console; poweroff -f; fi
mkdir -p /dev/pts /dev/shm /run /tmp /sys/fs/cgroup /var/lib
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo "+cpu +memory +pids +io" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
ln -sf /proc/self/fd /dev/fd
hostname husk
stamp mounted
# A line "<module> <virtio device id>" is loaded only if the VM has that
# device (the virtio buses are up by then: their modules come first).
present=
while read -r m device; do
  if [ -n "$device" ]; then
    [ -n "$present" ] || present=" $(cat /sys/bus/virtio/devices/*/device 2>/dev/null | tr '\\n' ' ') "
    case "$present" in *" $device "*) ;; *) continue ;; esac
  fi
  insmod "/lib/modules/${kernelRelease}/$m" 2>/dev/console || echo "husk-init: cannot load $m" >/dev/console
done </etc/husk/modules
# Loaded: their files would only hold guest memory (the initramfs is RAM).
rm -rf /lib/modules
stamp modules
mkdir -p ${GUEST_SHARE_MOUNT}
mount -t virtiofs ${GUEST_SHARE_TAG} ${GUEST_SHARE_MOUNT} 2>/dev/null || echo "husk-init: no virtio-fs share" >/dev/console
port=
for i in $(seq 1 200); do
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && [ "$(cat "$p/name")" = "${AGENT_PORT_NAME}" ] && port="/dev/\${p##*/}"
  done
  [ -n "$port" ] && [ -e "$port" ] && break
  port=
  usleep 10000
done
[ -n "$port" ] || echo "husk-init: no virtio-serial port named ${AGENT_PORT_NAME}" >/dev/console
stamp share-and-port
agent=/usr/bin/husk
[ -x "$agent" ] || agent="${GUEST_SHARE_MOUNT}/${AGENT_IN_SHARE}"
echo "${GUEST_READY_MARK} mode=$mode port=$port" >/dev/console
case "$mode" in
  # A port read returns EOF while no host end is connected: reopen until one is.
  echo) while :; do cat <>"$port" >&0; usleep 50000; done ;;
  shell) while :; do sh <>"$port" >&0 2>&0; usleep 50000; done ;;
  # An agent that dies (killed, crashed) is started again: the VM and the
  # sandbox live on, and the host learns of the containers it lost. One that
  # exits 0 was told to stop; one that dies 5 times within 10 s of its last
  # start is given up on.
  *) fails=0
     while :; do
       started=$(date +%s)
       ${jscAssignments()} "$agent" agent --channel "$channel" --runtime ${GUEST_OCI_RUNTIME} </dev/null >/dev/console 2>&1
       status=$?
       echo "husk-init: agent exited with status $status" >/dev/console
       [ "$status" = 0 ] && break
       [ $(($(date +%s) - started)) -ge 10 ] && fails=0
       fails=$((fails + 1))
       [ "$fails" -ge 5 ] && break
       echo "husk-init: restarting the agent" >/dev/console
     done ;;
esac
sync
poweroff -f
`;
}

// The agent is a resident husk process (see RESIDENT_JSC_ENV); under TCG
// every function the JIT compiles is also code QEMU must translate afresh.
const jscAssignments = (): string =>
  Object.entries(RESIDENT_JSC_ENV).map(([k, v]) => `${k}=${v}`).join(" ");
