export function registerRun(): void {}
