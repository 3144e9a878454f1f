/**
 * The uid and gid a provider runs every process as: the image's USER when it is exactly numeric
 * `uid:gid` (ya-runtime-vm deploy.rs parse_user: trimmed, split once at ':', both parsed as u32),
 * else root. `1000` alone, `app`, `app:app` all run as 0:0; gvmkit-build 0.3 drops USER anyway.
 */
export function providerUser(user: string | undefined): { uid: number; gid: number } {
  const parts = (user ?? '').trim().split(':');
  if (parts.length !== 2) return { uid: 0, gid: 0 };
  const [uid, gid] = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid) || uid! > 0xffffffff || gid! > 0xffffffff) return { uid: 0, gid: 0 };
  return { uid: uid!, gid: gid! };
}
