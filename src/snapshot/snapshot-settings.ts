/** Whether VMs start from snapshots: the caller's choice, else GVMI_TEST_SNAPSHOT (default on). */
export function snapshotsWanted(option: boolean | undefined): boolean {
  if (option !== undefined) return option;
  const env = process.env['GVMI_TEST_SNAPSHOT'];
  return !(env === '0' || env === 'false' || env === 'off' || env === 'no');
}
