export { startVm, type StartVmOptions } from './start-vm.js';
export { StartedVm, type ExecOptions, type SpawnOptions, type VmStats, type VmInfo } from './started-vm.js';
export { GuestProcess, type ExecResult, type OutputChunk } from './guest-process.js';
export type { VolumeMount } from './volumes.js';
export type { DownloadLimits, DownloadOptions, DownloadReport } from './transfer.js';
export { DEFAULT_DOWNLOAD_LIMITS } from './transfer.js';
