/** gvmi-test: boot Golem .gvmi images under provider conditions. The public library surface. */
export { startVm, StartedVm, GuestProcess, DEFAULT_DOWNLOAD_LIMITS } from './vm/index.js';
export type { StartVmOptions, ExecOptions, SpawnOptions, VmStats, VmInfo, ExecResult, OutputChunk, VolumeMount, DownloadReport, DownloadLimits, DownloadOptions } from './vm/index.js';
export { GvmiTestError, isGvmiTestError, type ErrorCode } from './errors.js';
export { STORAGE_ERROR_MODES, type DeployVolume, type DeployVolumes, type DeployVolumeInfo, type StorageErrorMode } from './vm/deploy-volumes.js';
export { readGvmi, encodeTrailer, type GvmiImage } from './image/gvmi-file.js';
export { buildImage, type BuildOptions, type BuildResult } from './image/build-image.js';
export { inspectImage, type Inspection } from './image/inspect-image.js';
export { runHostScript, uploadHostScript, findHostScript, defaultVolume, type UploadedScript } from './requestor/host-script.js';
export { guestArgv } from './requestor/guest-command.js';
export type { ContainerConfig, ImageMetadata } from './image/container-config.js';
export type { Finding, FindingCode } from './diagnostics/finding.js';
export { detectAccelerator, type Accelerator, type AcceleratorChoice } from './qemu/accelerator.js';
export { serveVm, type ServeOptions, type VmServer } from './server/ws-server.js';
export { connectVm, RemoteVm, type RemoteDownloadReport } from './server/ws-client.js';
export type { VmLike, VmLikeInfo } from './vm/vm-like.js';
export type { ClientMessage, ServerMessage } from './server/ws-protocol.js';
export { RUNTIME_PROFILES, DEFAULT_RUNTIME_PROFILE, RUNTIME_PROFILE_SUMMARY, parseRuntimeProfile, type RuntimeProfile } from './runtime-profile.js';
export { compareRuntimeRuns, type RuntimeRun, type RuntimeComparison } from './diagnostics/runtime-comparison.js';
export { startNetwork, VpnNetwork, DEFAULT_VPN_NETWORK, type StartNetworkOptions, type Forward, type JoinableNetwork } from './network/vpn-network.js';
// A network served by `gvmi-test network start` in another process, joined as startVm({ network }).
export { connectNetwork, listNetworks, RemoteNetwork, type ConnectNetworkOptions } from './network/network-control-client.js';
export type { NetworkDescription } from './network/network-control-protocol.js';
export type { VmNetworkOptions } from './network/vm-networking.js';
export type { OutboundOptions } from './network/outbound-access.js';
export { parseManifest, readManifest, type OutboundWhitelist } from './network/outbound-manifest.js';
export type { Refusal as OutboundRefusal } from './network/outbound-filter.js';
