import { describe, expect, it } from '@jest/globals';
import { parsePemBlocks, toPem } from '../../../src/ca/pem.js';

const BLOCK = toPem('CERTIFICATE', new Uint8Array([1, 2, 3, 4, 5]));

describe('parsePemBlocks', () => {
  it.each([
    ['one block', BLOCK, 1],
    ['two blocks with blank lines around them', `\n${BLOCK}\n\n${BLOCK}\n`, 2],
    ['CRLF line endings', BLOCK.replace(/\n/g, '\r\n'), 1],
  ])('reads %s', (_name, text, count) => {
    const result = parsePemBlocks(text);
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.blocks).toHaveLength(count);
      expect([...result.blocks[0]!.der]).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it.each([
    ['empty text', '', 'contains no PEM block'],
    ['text without blocks', 'hello', 'contains no PEM block'],
    ['text before a block', `Certificate:\n${BLOCK}`, 'contains text outside PEM blocks'],
    ['text after a block', `${BLOCK}junk`, 'contains text outside PEM blocks'],
    [
      'mismatched labels',
      BLOCK.replace('END CERTIFICATE', 'END PRIVATE KEY'),
      'begins "CERTIFICATE" but ends "PRIVATE KEY"',
    ],
    [
      'a legacy encrypted key header',
      '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n',
      'with headers',
    ],
    [
      'invalid base64',
      '-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n',
      'not valid base64',
    ],
    [
      'an empty block',
      '-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n',
      'empty CERTIFICATE',
    ],
    ['too many blocks', BLOCK.repeat(65), 'more than 64'],
  ])('refuses %s', (_name, text, fragment) => {
    const result = parsePemBlocks(text);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).toContain(fragment);
  });

  it('never quotes the content in a problem', () => {
    const result = parsePemBlocks(
      '-----BEGIN PRIVATE KEY-----\nSECRETSECRET!!\n-----END PRIVATE KEY-----\n',
    );
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problem).not.toContain('SECRET');
  });
});
