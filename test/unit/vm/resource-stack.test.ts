import { describe, expect, it } from 'vitest';
import { ResourceStack } from '../../../src/vm/resource-stack.js';

describe('ResourceStack', () => {
  it('releases in reverse order of acquisition, awaiting each', async () => {
    const stack = new ResourceStack();
    const order: string[] = [];
    stack.defer(async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('first acquired');
    });
    const value = stack.adopt({ name: 'second acquired' }, (v) => { order.push(v.name); });
    expect(value.name).toBe('second acquired');
    stack.defer(() => { order.push('third acquired'); });
    await stack.dispose();
    expect(order).toEqual(['third acquired', 'second acquired', 'first acquired']);
    expect(stack.empty).toBe(true);
  });

  it('runs every release when one fails, then throws the first failure', async () => {
    const stack = new ResourceStack();
    const ran: number[] = [];
    stack.defer(() => { ran.push(1); throw new Error('one'); });
    stack.defer(() => { ran.push(2); });
    stack.defer(() => { ran.push(3); throw new Error('three'); });
    await expect(stack.dispose()).rejects.toThrow('three');
    expect(ran).toEqual([3, 2, 1]);
  });

  it('move() hands everything to a new stack: the old one releases nothing', async () => {
    const stack = new ResourceStack();
    const released: string[] = [];
    stack.defer(() => { released.push('a'); });
    const moved = stack.move();
    await stack.dispose();
    expect(released).toEqual([]);
    moved.defer(() => { released.push('b'); });
    await moved.dispose();
    expect(released).toEqual(['b', 'a']);
  });

  it('a second dispose waits for the first and releases nothing twice', async () => {
    const stack = new ResourceStack();
    let releasing: () => void = () => {};
    let count = 0;
    stack.defer(() => new Promise<void>((r) => { count++; releasing = r; }));
    const first = stack.dispose();
    let secondDone = false;
    const second = stack.dispose().then(() => { secondDone = true; });
    await new Promise((r) => setTimeout(r, 10));
    expect(secondDone).toBe(false);
    releasing();
    await Promise.all([first, second]);
    expect(count).toBe(1);
  });

  it('await using releases at the end of the scope', async () => {
    const released: string[] = [];
    {
      await using stack = new ResourceStack();
      stack.defer(() => { released.push('x'); });
    }
    expect(released).toEqual(['x']);
  });
});
