// Lint configuration. Besides the usual rules it enforces the architecture: the pure core
// (src/federation, src/pki) never imports cluster, terminal, file or process I/O.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'fs', 'node:fs', 'fs/promises', 'node:fs/promises', 'process', 'node:process',
  'child_process', 'node:child_process', 'net', 'node:net', 'tls', 'node:tls', 'http', 'node:http',
  'https', 'node:https', '@kubernetes/client-node', 'chalk', 'ora', '@inquirer/prompts', 'yargs',
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly', structuredClone: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/federation/**/*.ts', 'src/pki/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ioModules.map((name) => ({ name, message: 'The core (src/federation, src/pki) is pure: do I/O in src/kube or src/ui.' })),
        patterns: [{ group: ['**/kube/**', '**/ui/**', '**/commands/**', '../kube/*', '../ui/*'], message: 'The core must not depend on the I/O layers.' }],
      }],
      'no-restricted-globals': ['error', { name: 'process', message: 'The core is pure: take values as parameters.' }],
    },
  },
);
