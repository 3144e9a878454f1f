/**
 * VMs started before they are asked for. A suite that wants a fresh VM per test pays a restore
 * for each; the pool starts the next one while the current test runs, so the test takes one that
 * is already up. A VM handed out is an ordinary start's result, started a little earlier: the
 * pool starts VMs with the very options a caller would, and hands each out once, untouched
 * (restored from the snapshot, fresh volumes, nothing of the image run); it never takes a VM
 * back. Used VMs are stopped in the background, and close() waits for those stops and ends every
 * VM still waiting, so nothing outlives the pool (a process killed before close() has its QEMUs
 * ended by the orphan reaper).
 */
import { availableParallelism } from 'node:os';
import { GvmiTestError } from '../errors.js';
import { snapshotsWanted } from '../snapshot/snapshot-settings.js';

/** What the pool needs of a VM: it only starts and stops them. */
export interface PoolableVm {
  stop(): Promise<void>;
}

export interface VmPoolOptions<V extends PoolableVm> {
  /** Starts one VM; `signal` aborts a start the pool no longer needs (close()). */
  start: (signal: AbortSignal) => Promise<V>;
  /** How many VMs to keep started ahead (0: none, every acquire starts one). */
  ready: number;
}

/**
 * The default number of VMs kept ready: GVMI_TEST_POOL when set, else one per core but one (a
 * core stays for the tests themselves), at least one; none when snapshots are off, as a booting
 * VM costs a whole cold start on a core the tests need.
 */
export function defaultPoolSize(snapshot: boolean | undefined): number {
  if (!snapshotsWanted(snapshot)) return 0;
  const fromEnv = process.env['GVMI_TEST_POOL'];
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 0) throw new GvmiTestError('usage', `GVMI_TEST_POOL must be a whole number of VMs (0 turns the pool off), not '${fromEnv}'`);
    return n;
  }
  return Math.max(1, availableParallelism() - 1);
}

interface Pending<V> {
  vm: Promise<V>;
  controller: AbortController;
}

export class VmPool<V extends PoolableVm> {
  private readonly waiting: Pending<V>[] = [];
  private readonly stopping = new Set<Promise<void>>();
  private stopFailure: { error: unknown } | undefined;
  /**
   * Set once a start has succeeded: before that no VM is started ahead, so the first start (which
   * may boot and save the snapshot) is not run twice at once, each booting.
   */
  private primed = false;
  private closed = false;

  constructor(private readonly options: VmPoolOptions<V>) {
    if (!Number.isInteger(options.ready) || options.ready < 0) throw new GvmiTestError('usage', `a VM pool keeps a whole number of VMs ready, not ${options.ready}`);
  }

  /** A VM of its own for the caller: one started ahead if there is one, else started now. */
  async acquire(): Promise<V> {
    if (this.closed) throw new GvmiTestError('usage', 'the VM pool is closed');
    const next = this.waiting.shift() ?? this.startOne();
    // The next test's VM starts while this one is used.
    const vm = await next.vm;
    this.primed = true;
    this.fill();
    return vm;
  }

  /** The caller is done with `vm`: it is stopped in the background (close() waits for it). */
  release(vm: V): void {
    const stop = vm.stop().catch((error: unknown) => { this.stopFailure ??= { error }; });
    this.stopping.add(stop);
    void stop.finally(() => this.stopping.delete(stop));
  }

  /** How many VMs are started ahead or starting. */
  get readyCount(): number {
    return this.waiting.length;
  }

  /**
   * Ends every VM started ahead (a start under way is aborted) and waits for the stops of those
   * released; the first stop that failed is thrown then.
   */
  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.waiting.splice(0);
    for (const pending of waiting) pending.controller.abort();
    await Promise.all(waiting.map(async (pending) => {
      // An aborted start throws; one that had finished stops its VM on the abort.
      const vm = await pending.vm.catch(() => undefined);
      await vm?.stop().catch((error: unknown) => { this.stopFailure ??= { error }; });
    }));
    while (this.stopping.size > 0) await Promise.all([...this.stopping]);
    if (this.stopFailure) throw this.stopFailure.error;
  }

  private startOne(): Pending<V> {
    const controller = new AbortController();
    const vm = this.options.start(controller.signal);
    // A start that fails while nobody waits for it fails the acquire that takes it.
    vm.catch(() => {});
    return { vm, controller };
  }

  private fill(): void {
    while (this.primed && !this.closed && this.waiting.length < this.options.ready) this.waiting.push(this.startOne());
  }
}
