/**
 * The local Docker or Podman engine, through its own command-line client: which engine has an
 * image (and its id), and saving that image as a `docker save` tarball, which `build` converts.
 *
 * Extra global options for an engine come from GVMI_TEST_DOCKER_ARGS / GVMI_TEST_PODMAN_ARGS
 * (words split at white space), e.g. `--root DIR --runroot DIR --storage-driver vfs` for a Podman
 * store of its own; they go before every subcommand, so the lookup and the save see the same
 * store. The engines' own settings (DOCKER_HOST, DOCKER_CONTEXT, CONTAINERS_STORAGE_CONF, …) reach
 * them through the environment as usual.
 *
 * The client is reached through `EngineCli`, so that which command lines are run, and how each
 * answer is read, can be tested without an engine.
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { GvmiTestError } from '../errors.js';
import { ENGINES, type EngineName } from './image-reference.js';

export interface EngineAnswer {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How an engine's client is found and run: the real one spawns it, tests give answers. */
export interface EngineCli {
  /** The client's path, or undefined when it is not installed. */
  find(engine: EngineName): Promise<string | undefined>;
  run(client: string, args: readonly string[], options: { timeoutMs?: number }): Promise<EngineAnswer>;
  /** The environment the extra options are read from. */
  env: NodeJS.ProcessEnv;
}

export const ENGINE_ARGS_ENV: Record<EngineName, string> = {
  docker: 'GVMI_TEST_DOCKER_ARGS',
  podman: 'GVMI_TEST_PODMAN_ARGS',
};

/** An engine's answer to "inspect" can take a while (a daemon starting), never minutes. */
const INSPECT_TIMEOUT_MS = 60_000;

async function onPath(name: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

export const systemEngineCli: EngineCli = {
  find: (engine) => onPath(engine, process.env['PATH']),
  run: (client, args, { timeoutMs }) => new Promise((resolve) => {
    execFile(client, [...args], { encoding: 'utf8', maxBuffer: 16 << 20, ...(timeoutMs ? { timeout: timeoutMs } : {}) }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      // Not started at all (ENOENT, EACCES) or killed by the timeout: said in stderr's place.
      const why = error && code === -1 ? `${error.message}${error.killed ? ' (timed out)' : ''}` : '';
      resolve({ exitCode: code, stdout, stderr: stderr || why });
    });
  }),
  env: process.env,
};

/** The engine's global options from its environment variable. */
export function engineGlobalArgs(engine: EngineName, env: NodeJS.ProcessEnv): string[] {
  return (env[ENGINE_ARGS_ENV[engine]] ?? '').split(/\s+/).filter(Boolean);
}

/** `image inspect`: one line, the image id, whatever the engine. */
export function inspectArgs(engine: EngineName, env: NodeJS.ProcessEnv, name: string): string[] {
  return [...engineGlobalArgs(engine, env), 'image', 'inspect', '--format', '{{.Id}}', name];
}

/**
 * `save` by id, not by name: the tag may move to another image between the lookup and the save,
 * and the converted image is remembered by this id. Podman is asked for Docker's format (its
 * default, said anyway: containers.conf can change the default).
 */
export function saveArgs(engine: EngineName, env: NodeJS.ProcessEnv, imageId: string, tarball: string): string[] {
  const format = engine === 'podman' ? ['--format', 'docker-archive'] : [];
  return [...engineGlobalArgs(engine, env), 'save', ...format, '-o', tarball, imageId];
}

/** What an engine said when asked about an image. */
export type EngineLookup =
  | { engine: EngineName; state: 'found'; client: string; imageId: string }
  | { engine: EngineName; state: 'not-installed' }
  | { engine: EngineName; state: 'not-found'; client: string; said: string }
  /** Installed but unable to answer: no daemon, no permission, a bad option… */
  | { engine: EngineName; state: 'unusable'; client: string; said: string };

const NOT_FOUND = /no such image|image not known|not found|does not exist|unable to find/i;

/** The first line that says something, from an engine's error output. */
function firstWords(text: string): string {
  return text.split('\n').map((l) => l.trim()).find(Boolean)?.slice(0, 300) ?? '(no output)';
}

/** Reads an `image inspect` answer (exported for tests: the engines' wordings). */
export function readInspectAnswer(engine: EngineName, client: string, answer: EngineAnswer): EngineLookup {
  if (answer.exitCode === 0) {
    const id = answer.stdout.trim().replace(/^sha256:/, '');
    if (/^[0-9a-f]{64}$/.test(id)) return { engine, state: 'found', client, imageId: id };
    return { engine, state: 'unusable', client, said: `unexpected image id ${JSON.stringify(firstWords(answer.stdout))}` };
  }
  // Docker cannot tell "no daemon" apart by status, only by words; a daemon that is not there
  // is never "not found".
  const said = firstWords(answer.stderr);
  if (NOT_FOUND.test(answer.stderr) && !/cannot connect|connection refused|permission denied|is the docker daemon running/i.test(answer.stderr)) {
    return { engine, state: 'not-found', client, said };
  }
  return { engine, state: 'unusable', client, said };
}

export async function lookUpImage(engine: EngineName, name: string, cli: EngineCli = systemEngineCli): Promise<EngineLookup> {
  const client = await cli.find(engine);
  if (!client) return { engine, state: 'not-installed' };
  return readInspectAnswer(engine, client, await cli.run(client, inspectArgs(engine, cli.env, name), { timeoutMs: INSPECT_TIMEOUT_MS }));
}

export interface EngineImage {
  engine: EngineName;
  client: string;
  /** The reference as given (without the engine prefix). */
  name: string;
  /** The engine's image id (hex, without `sha256:`): what the converted image is remembered by. */
  imageId: string;
}

/**
 * The engine holding `name`: the one asked for, else Docker, then Podman. Throws
 * setup.engine-missing when no engine's client is installed, image.not-in-engine when the engines
 * answer but none has the image, setup.engine-unusable when an engine cannot answer.
 */
export async function findEngineImage(name: string, engine: EngineName | undefined, cli: EngineCli = systemEngineCli): Promise<EngineImage> {
  const asked = engine ? [engine] : [...ENGINES];
  const answers: EngineLookup[] = [];
  for (const e of asked) {
    const answer = await lookUpImage(e, name, cli);
    if (answer.state === 'found') return { engine: e, client: answer.client, name, imageId: answer.imageId };
    answers.push(answer);
  }
  const which = engine ? `${engine}` : 'docker or podman';
  const installed = answers.filter((a) => a.state !== 'not-installed');
  const details = { name, engines: answers.map((a) => ({ engine: a.engine, state: a.state, ...('said' in a ? { said: a.said } : {}) })) };
  if (installed.length === 0) {
    throw new GvmiTestError('setup.engine-missing', `${name} is no file here, and no container engine (${which}) is installed to look it up`, {
      hint: engine === 'podman' || !engine
        ? 'install Podman (Debian: apt-get install podman) or Docker, or give the path of a rootfs directory, docker-save tarball or OCI layout'
        : 'install Docker, or give the path of a rootfs directory, docker-save tarball or OCI layout',
      details,
    });
  }
  const summary = installed.map((a) => `${a.engine}: ${'said' in a ? a.said : a.state}`).join('; ');
  if (installed.some((a) => a.state === 'not-found')) {
    const first = installed.find((a) => a.state === 'not-found')!.engine;
    throw new GvmiTestError('image.not-in-engine', `no image ${name} in ${which} (${summary})`, {
      hint: `build or pull it first (\`${first} build -t ${name} .\`, \`${first} pull ${name}\`); \`${first} images\` lists what there is${looksLikeAPath(name) ? `; or, if ${name} is a file, check its path` : ''}`,
      details,
    });
  }
  throw new GvmiTestError('setup.engine-unusable', `cannot ask ${which} for ${name}: ${summary}`, {
    hint: 'is the engine running, and may this user use it? (`docker info` / `podman info` says); extra options for the engine: GVMI_TEST_DOCKER_ARGS / GVMI_TEST_PODMAN_ARGS',
    details,
  });
}

function looksLikeAPath(name: string): boolean {
  return name.includes('.') || name.includes('/');
}

/** Saves the image (by id) as a `docker save` tarball at `tarball`. */
export async function saveEngineImage(image: EngineImage, tarball: string, cli: EngineCli = systemEngineCli): Promise<void> {
  const answer = await cli.run(image.client, saveArgs(image.engine, cli.env, image.imageId, tarball), {});
  if (answer.exitCode !== 0) {
    throw new GvmiTestError('setup.engine-unusable', `${image.engine} could not save ${image.name} (${image.imageId.slice(0, 12)}): ${firstWords(answer.stderr)}`, {
      hint: `\`${image.engine} save -o FILE ${image.name}\` should work; then \`gvmi-test build FILE\``,
      details: { engine: image.engine, imageId: image.imageId, stderr: answer.stderr.slice(-4000) },
    });
  }
}
