import type { ContainerStatus } from "../oci/index.ts";
import { GetContainerStateResponse_Status as StatusMsg } from "./gen/husk/agent/v1/container_pb.ts";

// A container's OCI status on the wire (GetContainerState) and back.
const TO_MSG: Readonly<Record<ContainerStatus, StatusMsg>> = {
  creating: StatusMsg.CREATING,
  created: StatusMsg.CREATED,
  running: StatusMsg.RUNNING,
  paused: StatusMsg.PAUSED,
  stopped: StatusMsg.STOPPED,
};

export const statusToMsg = (s: ContainerStatus): StatusMsg => TO_MSG[s];

// Undefined for UNSPECIFIED or a value a newer agent added.
export const statusFromMsg = (m: StatusMsg): ContainerStatus | undefined =>
  (Object.keys(TO_MSG) as ContainerStatus[]).find((s) => TO_MSG[s] === m);
