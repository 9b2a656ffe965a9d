import type { CliCommand } from './command.js';
import { lazyCommand } from './lazy-command.js';
import { serveCommand } from './serve-command.js';

/**
 * Every command, in the order `warden --help` lists them. Add one line per command. All but
 * `serve` load on first use (lazy-command.ts), so `warden serve` never loads their modules.
 */
export const COMMANDS: readonly CliCommand[] = [
  serveCommand,
  lazyCommand(
    'init',
    'Create trust material (root, issuer) in the credentials directory',
    async () => (await import('./init-command.js')).initCommand,
  ),
  lazyCommand(
    'status',
    'Show the trust anchors and issuer, and warn before they expire',
    async () => (await import('./status-command.js')).statusCommand,
  ),
  lazyCommand(
    'secrets resolve',
    'Print every Component with its secretKeyRef/envRef values resolved (masked unless --reveal)',
    async () => (await import('./secrets-resolve.js')).secretsResolveCommand,
  ),
  lazyCommand(
    'secrets serve',
    'Serve Dapr’s secrets API (GET /v1.0/secrets/...) over mutual TLS with secret scoping',
    async () => (await import('./secrets-serve.js')).secretsServeCommand,
  ),
];
