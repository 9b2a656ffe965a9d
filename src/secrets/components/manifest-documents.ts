import { promises as fs } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { SecretsProblem } from '../problems.js';

/** A manifest file larger than this is refused: Components are small. */
export const MAX_MANIFEST_FILE_BYTES = 4 * 1024 * 1024;

/** Alias expansions allowed per document: Components need none; this bounds "billion laughs". */
export const MAX_YAML_ALIASES = 100;

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** One parsed YAML/JSON document and where it came from. */
export interface ManifestDocument {
  readonly source: string;
  readonly document: unknown;
}

export interface ManifestDocuments {
  readonly documents: ManifestDocument[];
  readonly problems: SecretsProblem[];
}

function invalid(source: string, message: string): SecretsProblem {
  return { code: 'ERR_COMPONENT_INVALID', source, message };
}

/**
 * Parses one file's text. Errors carry line and column only: the parsers' own messages
 * quote the offending text, and a manifest may hold a plain-text password.
 */
export function parseManifestText(text: string, file: string): ManifestDocuments {
  const documents: ManifestDocument[] = [];
  const problems: SecretsProblem[] = [];
  if (path.extname(file).toLowerCase() === '.json') {
    try {
      documents.push({ source: file, document: JSON.parse(text) as unknown });
    } catch (err) {
      const position = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
      problems.push(invalid(file, `not valid JSON${position === undefined ? '' : ` (near byte offset ${position})`}`));
    }
    return { documents, problems };
  }
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const docs = Array.isArray(parsed) ? parsed : [parsed];
  docs.forEach((doc, index) => {
    const source = docs.length > 1 ? `${file}#${index + 1}` : file;
    if (doc.errors.length > 0) {
      const seen = new Set<string>();
      for (const error of doc.errors) {
        const at = lineCounter.linePos(error.pos[0]);
        const message = `not valid YAML${at ? ` at line ${at.line}, column ${at.col}` : ''} (${error.code})`;
        // The parser can report one fault twice (e.g. BAD_INDENT at one position).
        if (!seen.has(message)) problems.push(invalid(source, message));
        seen.add(message);
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (err) {
      // yaml throws a ReferenceError for an alias bomb ("billion laughs"); it must become a
      // problem like any other, not escape resolution as an unexpected error.
      if (!(err instanceof ReferenceError)) throw err;
      problems.push(invalid(source, `expands more than ${MAX_YAML_ALIASES} YAML aliases (refused as a resource-exhaustion attack)`));
      return;
    }
    if (value === null || value === undefined) return; // an empty document between `---` lines
    documents.push({ source, document: value });
  });
  return { documents, problems };
}

async function listManifestFiles(resourcesPath: string, problems: SecretsProblem[]): Promise<string[]> {
  let stat;
  try {
    stat = await fs.stat(resourcesPath);
  } catch (err) {
    problems.push(invalid(resourcesPath, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
    return [];
  }
  if (stat.isFile()) return [resourcesPath];
  if (!stat.isDirectory()) {
    problems.push(invalid(resourcesPath, 'is neither a file nor a directory'));
    return [];
  }
  // Like Dapr's --resources-path: the directory's own files, not its subdirectories.
  const entries = await fs.readdir(resourcesPath, { withFileTypes: true });
  return entries
    .filter((entry) => !entry.isDirectory() && MANIFEST_EXTENSIONS.has(path.extname(entry.name).toLowerCase()))
    .map((entry) => path.join(resourcesPath, entry.name))
    .sort();
}

/** Reads every manifest file from files and directories, collecting every problem. */
export async function readManifestDocuments(resourcesPaths: readonly string[]): Promise<ManifestDocuments> {
  const documents: ManifestDocument[] = [];
  const problems: SecretsProblem[] = [];
  for (const resourcesPath of resourcesPaths) {
    for (const file of await listManifestFiles(resourcesPath, problems)) {
      let text: string;
      try {
        const stat = await fs.stat(file);
        if (!stat.isFile()) continue;
        if (stat.size > MAX_MANIFEST_FILE_BYTES) {
          problems.push(invalid(file, `is larger than ${MAX_MANIFEST_FILE_BYTES} bytes`));
          continue;
        }
        text = await fs.readFile(file, 'utf8');
      } catch (err) {
        problems.push(invalid(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
        continue;
      }
      const parsed = parseManifestText(text, file);
      documents.push(...parsed.documents);
      problems.push(...parsed.problems);
    }
  }
  return { documents, problems };
}

/** The `kind` of a document, when it has one. */
export function documentKind(document: unknown): string | undefined {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return undefined;
  const kind = (document as { kind?: unknown }).kind;
  return typeof kind === 'string' ? kind : undefined;
}
