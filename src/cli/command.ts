/** One CLI command: `warden <name> [flags]`. Each lives in its own file under src/cli/. */
export interface CliCommand {
  readonly name: string;
  readonly summary: string;
  /** Resolves to the process exit code. */
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}
