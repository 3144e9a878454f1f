/** gvmi-test: boot Golem .gvmi images under provider conditions. The public library surface. */
export { startVm, StartedVm, GuestProcess } from './vm/index.js';
export type { StartVmOptions, ExecOptions, SpawnOptions, VmStats, VmInfo, ExecResult, OutputChunk, VolumeMount, DownloadReport } from './vm/index.js';
export { GvmiTestError, isGvmiTestError, type ErrorCode } from './errors.js';
export { readGvmi, encodeTrailer, type GvmiImage } from './image/gvmi-file.js';
export { buildImage, type BuildOptions, type BuildResult } from './image/build-image.js';
export { inspectImage, type Inspection } from './image/inspect-image.js';
export { runHostScript, uploadHostScript, findHostScript, defaultVolume, type UploadedScript } from './requestor/host-script.js';
export type { ContainerConfig, ImageMetadata } from './image/container-config.js';
export type { Finding, FindingCode } from './diagnostics/finding.js';
export { detectAccelerator, type Accelerator, type AcceleratorChoice } from './qemu/accelerator.js';
export { serveVm, type ServeOptions, type VmServer } from './server/ws-server.js';
export { connectVm, RemoteVm, type RemoteDownloadReport } from './server/ws-client.js';
export type { VmLike, VmLikeInfo } from './vm/vm-like.js';
export type { ClientMessage, ServerMessage } from './server/ws-protocol.js';
export { RUNTIME_PROFILES, DEFAULT_RUNTIME_PROFILE, RUNTIME_PROFILE_SUMMARY, parseRuntimeProfile, type RuntimeProfile } from './runtime-profile.js';
export { compareRuntimeRuns, type RuntimeRun, type RuntimeComparison } from './diagnostics/runtime-comparison.js';
