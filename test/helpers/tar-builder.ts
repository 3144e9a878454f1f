/** Writes tar archives for tests: layers, docker-save and OCI layouts, made without Docker. */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export type TarEntry =
  | { name: string; type?: 'file'; content?: string; mode?: number; uid?: number; gid?: number }
  | { name: string; type: 'directory'; mode?: number; uid?: number; gid?: number }
  | { name: string; type: 'symlink' | 'link'; linkname: string }
  | { name: string; type: 'character-device'; devmajor: number; devminor: number; mode?: number };

/** A tar of these entries; string contents are written in `encoding` (latin1: byte for byte). */
export async function makeTar(entries: readonly TarEntry[], encoding: BufferEncoding = 'utf8'): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const header = { ...e, mtime: new Date(0) } as tar.Header;
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.type === undefined || e.type === 'file') pack.entry(header, Buffer.from((e as { content?: string }).content ?? '', encoding), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface ImageSpec {
  layers: TarEntry[][];
  config: Record<string, unknown>;
  gzipLayers?: boolean;
  architecture?: string;
}

function imageConfig(spec: ImageSpec): Buffer {
  return Buffer.from(JSON.stringify({ architecture: spec.architecture ?? 'amd64', os: 'linux', config: spec.config, rootfs: { type: 'layers', diff_ids: [] } }));
}

/** A `docker save` tarball (legacy layout: <id>/layer.tar + manifest.json). */
export async function makeDockerSave(spec: ImageSpec): Promise<Buffer> {
  const config = imageConfig(spec);
  const entries: TarEntry[] = [];
  const layerNames: string[] = [];
  for (const [i, layer] of spec.layers.entries()) {
    const raw = await makeTar(layer);
    const data = spec.gzipLayers ? gzipSync(raw) : raw;
    const dir = `${String(i).padStart(2, '0')}${sha256(data).slice(0, 10)}`;
    entries.push({ name: `${dir}/`, type: 'directory' }, { name: `${dir}/layer.tar`, content: data.toString('latin1') });
    layerNames.push(`${dir}/layer.tar`);
  }
  const configName = `${sha256(config)}.json`;
  entries.push({ name: configName, content: config.toString('latin1') });
  entries.push({ name: 'manifest.json', content: JSON.stringify([{ Config: configName, RepoTags: ['test:latest'], Layers: layerNames }]) });
  return makeTar(entries, 'latin1');
}

/** An OCI image layout as a tar (oci-layout, index.json, blobs/sha256/...). */
export async function makeOciLayout(spec: ImageSpec): Promise<Buffer> {
  const blobs: Buffer[] = [];
  const layerDescriptors = [];
  for (const layer of spec.layers) {
    const raw = await makeTar(layer);
    const data = spec.gzipLayers ? gzipSync(raw) : raw;
    blobs.push(data);
    layerDescriptors.push({ mediaType: `application/vnd.oci.image.layer.v1.tar${spec.gzipLayers ? '+gzip' : ''}`, digest: `sha256:${sha256(data)}`, size: data.length });
  }
  const config = imageConfig(spec);
  blobs.push(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha256(config)}`, size: config.length },
    layers: layerDescriptors,
  }));
  blobs.push(manifest);
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha256(manifest)}`, size: manifest.length, platform: { architecture: 'amd64', os: 'linux' } }] };
  const entries: TarEntry[] = [
    { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'index.json', content: JSON.stringify(index) },
    ...blobs.map((b) => ({ name: `blobs/sha256/${sha256(b)}`, content: b.toString('latin1') })),
  ];
  return makeTar(entries, 'latin1');
}
