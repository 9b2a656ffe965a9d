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
    'rotate prepare',
    'Make the next root and issuer and publish the next root beside the current one',
    async () => (await import('./rotate-prepare-command.js')).rotatePrepareCommand,
  ),
  lazyCommand(
    'rotate activate',
    'Switch signing to the prepared next issuer',
    async () => (await import('./rotate-activate-command.js')).rotateActivateCommand,
  ),
  lazyCommand(
    'rotate retire',
    'Drop the old root from the trust anchors',
    async () => (await import('./rotate-retire-command.js')).rotateRetireCommand,
  ),
  lazyCommand(
    'rotate status',
    'Show the rotation phase, the roots, the JWT key, and when each next step is allowed',
    async () => (await import('./rotate-status-command.js')).rotateStatusCommand,
  ),
  lazyCommand(
    'request',
    'Be a sidecar: make a key and CSR, get an X.509-SVID from the CA over pinned TLS, write cert/key/anchors files',
    async () => (await import('./request-command.js')).requestCommand,
  ),
  lazyCommand(
    'secrets resolve',
    'Print every Component with its secretKeyRef/envRef values resolved (masked unless --reveal)',
    async () => (await import('./secrets-resolve.js')).secretsResolveCommand,
  ),
  lazyCommand(
    'secrets serve',
    'Serve Dapr’s secrets API (GET /v1.0/secrets/...) over mutual TLS with an SVID from Warden’s CA, with secret scoping',
    async () => (await import('./secrets-serve.js')).secretsServeCommand,
  ),
];
