import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import YAML from 'yaml';
import { InputError } from '../errors.js';

/** A kubeconfig `cluster` entry, with file paths made absolute. */
export interface KubeCluster {
  server: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
  'proxy-url'?: string;
  [key: string]: unknown;
}

/** A kubeconfig `user` (AuthInfo) entry, with file paths made absolute. */
export interface KubeUser {
  token?: string;
  tokenFile?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  username?: string;
  password?: string;
  exec?: Record<string, unknown>;
  'auth-provider'?: Record<string, unknown>;
  [key: string]: unknown;
}

/** One context with its cluster and user resolved: everything needed to talk to that cluster. */
export interface ResolvedContext {
  name: string;
  clusterName: string;
  userName: string;
  /** The context's default namespace, or undefined when it sets none (then `default` applies). */
  namespace: string | undefined;
  cluster: KubeCluster | undefined;
  user: KubeUser | undefined;
}

/** Where kubeconfig files are looked for, as kubectl does. */
export interface KubeconfigSource {
  /** `--kubeconfig`: exactly this one file, which must exist. */
  explicitPath?: string | undefined;
  /** The process environment (KUBECONFIG). */
  env: Record<string, string | undefined>;
  /** Home directory for `~/.kube/config`; defaults to the user's. */
  home?: string;
}

/** The merged kubeconfig. */
export class Kubeconfig {
  constructor(
    /** The files read, in precedence order. */
    readonly files: string[],
    readonly currentContext: string | undefined,
    readonly contexts: ReadonlyMap<string, ResolvedContext>,
  ) {}

  /** Context names in kubeconfig order. */
  contextNames(): string[] {
    return [...this.contexts.keys()];
  }

  /**
   * The named context, or the current one when `name` is undefined. Errors name the problem and list the known
   * contexts, so the user can pick one.
   */
  context(name: string | undefined, flag = '--context'): ResolvedContext {
    const wanted = name ?? this.currentContext;
    const known = this.contextNames();
    const list = known.length ? `known contexts: ${known.join(', ')}` : 'the kubeconfig has no contexts';
    if (!wanted) {
      throw new InputError(`no context given and the kubeconfig (${this.describeFiles()}) has no current-context`, {
        hint: `pass ${flag} <name>; ${list}`,
      });
    }
    const context = this.contexts.get(wanted);
    if (!context) {
      throw new InputError(`context "${wanted}" not found in kubeconfig (${this.describeFiles()})`, { hint: `${list}; pass ${flag} <name>` });
    }
    if (!context.cluster) {
      throw new InputError(`context "${wanted}" refers to cluster "${context.clusterName}", which is not in the kubeconfig`, {
        hint: 'fix the context entry, or add the cluster with `kubectl config set-cluster`',
      });
    }
    return context;
  }

  describeFiles(): string {
    return this.files.length ? this.files.join(delimiter) : 'no file';
  }
}

interface NamedEntry<T> {
  name?: string;
  cluster?: T;
  user?: T;
  context?: T;
}

interface RawConfig {
  'current-context'?: string;
  clusters?: Array<NamedEntry<KubeCluster>>;
  users?: Array<NamedEntry<KubeUser>>;
  contexts?: Array<NamedEntry<{ cluster?: string; user?: string; namespace?: string }>>;
}

/** Paths inside a kubeconfig are relative to the file that holds them (kubectl's rule). */
function absolutise<T extends Record<string, unknown>>(entry: T, keys: string[], base: string): T {
  const copy: Record<string, unknown> = { ...entry };
  for (const key of keys) {
    const value = copy[key];
    if (typeof value === 'string' && value !== '' && !isAbsolute(value)) copy[key] = resolve(base, value);
  }
  return copy as T;
}

function parseFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read kubeconfig ${path}: ${(error as Error).message}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (error) {
    throw new InputError(`kubeconfig ${path} is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new InputError(`kubeconfig ${path} is not a kubeconfig (expected a mapping)`);
  return parsed as RawConfig;
}

/**
 * Loads kubeconfig exactly as kubectl does: `--kubeconfig` is one file that must exist; else every existing file of
 * the KUBECONFIG list is merged, the first file to define a name (or the current-context) winning; else
 * `~/.kube/config` if it exists.
 */
export function loadKubeconfig(source: KubeconfigSource): Kubeconfig {
  let files: string[];
  if (source.explicitPath) {
    if (!existsSync(source.explicitPath)) {
      throw new InputError(`kubeconfig file ${source.explicitPath} (--kubeconfig) does not exist`, { hint: 'give the path of an existing kubeconfig file' });
    }
    files = [resolve(source.explicitPath)];
  } else if (source.env.KUBECONFIG) {
    const seen = new Set<string>();
    files = source.env.KUBECONFIG.split(delimiter)
      .filter((path) => path !== '')
      .map((path) => resolve(path))
      .filter((path) => (seen.has(path) ? false : (seen.add(path), existsSync(path))));
  } else {
    const path = join(source.home ?? homedir(), '.kube', 'config');
    files = existsSync(path) ? [path] : [];
  }

  const clusters = new Map<string, KubeCluster>();
  const users = new Map<string, KubeUser>();
  const contexts = new Map<string, { cluster?: string; user?: string; namespace?: string }>();
  let currentContext: string | undefined;
  for (const file of files) {
    const raw = parseFile(file);
    const base = dirname(file);
    currentContext ||= raw['current-context'] || undefined;
    for (const entry of raw.clusters ?? []) {
      if (entry?.name && entry.cluster && !clusters.has(entry.name)) {
        clusters.set(entry.name, absolutise(entry.cluster, ['certificate-authority'], base));
      }
    }
    for (const entry of raw.users ?? []) {
      if (entry?.name && !users.has(entry.name)) {
        const user = absolutise(entry.user ?? {}, ['client-certificate', 'client-key', 'tokenFile'], base);
        // An exec plugin's command with a path separator is relative to the kubeconfig's directory; a bare name is
        // looked up on PATH (client-go tools/clientcmd/loader.go, GetAuthInfoFileReferences).
        const command = user.exec?.command;
        if (typeof command === 'string' && command.includes(sep) && !isAbsolute(command)) user.exec = { ...user.exec, command: resolve(base, command) };
        users.set(entry.name, user);
      }
    }
    for (const entry of raw.contexts ?? []) {
      if (entry?.name && !contexts.has(entry.name)) contexts.set(entry.name, entry.context ?? {});
    }
  }

  const resolved = new Map<string, ResolvedContext>();
  for (const [name, context] of contexts) {
    resolved.set(name, {
      name,
      clusterName: context.cluster ?? '',
      userName: context.user ?? '',
      namespace: context.namespace || undefined,
      cluster: context.cluster ? clusters.get(context.cluster) : undefined,
      user: context.user ? users.get(context.user) : undefined,
    });
  }
  return new Kubeconfig(files, currentContext, resolved);
}
