import { describe, expect, it } from 'vitest';
import { providerUser } from '../../../src/vm/provider-user.js';

describe('the USER a provider honours (deploy.rs parse_user)', () => {
  it.each([
    ['1000:1000', 1000, 1000],
    [' 33:44 ', 33, 44],
    ['1000', 0, 0],
    ['app', 0, 0],
    ['app:app', 0, 0],
    ['1000:app', 0, 0],
    ['', 0, 0],
    [undefined, 0, 0],
    ['1:2:3', 0, 0],
    ['-1:5', 0, 0],
    ['99999999999:1', 0, 0],
  ])('%j runs as %i:%i', (user, uid, gid) => {
    expect(providerUser(user)).toEqual({ uid, gid });
  });
});
