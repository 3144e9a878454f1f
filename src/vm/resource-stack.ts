/**
 * The one owner of what a VM holds until it ends: temporary directories, volumes handed to QEMU's
 * user, QEMU itself and its channels. Each resource is pushed as it is acquired and released in
 * the reverse order, every release run even when an earlier one failed (then the first failure
 * is thrown once all have run). A step that finished hands what it holds on with `move()`:
 * launchQemu's stack to startVm's, startVm's to the started VM.
 */
export class ResourceStack implements AsyncDisposable {
  private releases: (() => unknown)[] = [];
  /** Disposals run one after another: a second waits for the first (a crash racing a stop). */
  private released: Promise<void> = Promise.resolve();

  /** Releases `release` with the others; pushed after everything that is in the stack now. */
  defer(release: () => unknown): void {
    this.releases.push(release);
  }

  /** `value`, released by `release(value)` with the others. */
  adopt<T>(value: T, release: (value: T) => unknown): T {
    this.defer(() => release(value));
    return value;
  }

  /** A new stack holding everything this one held; this one is left empty. */
  move(): ResourceStack {
    const moved = new ResourceStack();
    moved.releases = this.releases.splice(0);
    return moved;
  }

  get empty(): boolean {
    return this.releases.length === 0;
  }

  /**
   * Releases everything, last acquired first. Safe to call again (and concurrently): a later
   * call waits for an earlier one, then releases whatever was pushed since.
   */
  dispose(): Promise<void> {
    const run = this.released.then(() => this.releaseAll());
    this.released = run.catch(() => {});
    return run;
  }

  private async releaseAll(): Promise<void> {
    let failure: { error: unknown } | undefined;
    for (let release = this.releases.pop(); release; release = this.releases.pop()) {
      try {
        await release();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
