// Types of release-targets.mjs for the tests that import it.
export interface ReleaseTarget { os: 'linux' | 'darwin' | 'windows'; arch: 'amd64' | 'arm64'; npm: string; binary: string; integrity: string }

export const root: string;
export const NODE_VERSION: string;
export const TARGETS: readonly ReleaseTarget[];
export const KREW_VERSION: string;
export const homepage: string;
export function targetName(target: ReleaseTarget): string;
export function executableName(target: ReleaseTarget): string;
export function archiveName(target: ReleaseTarget, version?: string): string;
export function releaseUrl(target: ReleaseTarget, version?: string): string;
export function nodeBinary(target: ReleaseTarget): string;
export function hostNode(): string;
export function krewTools(): { krew: string; validate: string } | undefined;
