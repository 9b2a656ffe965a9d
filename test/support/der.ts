/** Just enough DER reading for tests to look at bytes no library normalises for them. */

export interface DerNode {
  readonly tag: number;
  /** Offset of the content within the buffer, and its length. */
  readonly start: number;
  readonly length: number;
}

export function readNode(buf: Uint8Array, offset: number): DerNode & { readonly end: number } {
  const tag = buf[offset] as number;
  let length = buf[offset + 1] as number;
  let start = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    length = 0;
    for (let i = 0; i < octets; i++) length = (length << 8) | (buf[start + i] as number);
    start += octets;
  }
  return { tag, start, length, end: start + length };
}

export function children(buf: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let at = node.start;
  while (at < node.start + node.length) {
    const child = readNode(buf, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** tbsCertificate's serialNumber INTEGER content octets, exactly as encoded. */
export function serialOctets(certDer: Uint8Array): Uint8Array {
  const cert = readNode(certDer, 0);
  const tbs = children(certDer, cert)[0] as DerNode;
  const fields = children(certDer, tbs);
  const serial = (fields[0]?.tag === 0xa0 ? fields[1] : fields[0]) as DerNode;
  if (serial.tag !== 0x02) throw new Error('serial is not an INTEGER');
  return certDer.slice(serial.start, serial.start + serial.length);
}

/** Tags of notBefore and notAfter: 0x17 UTCTime, 0x18 GeneralizedTime. */
export function validityTags(certDer: Uint8Array): { notBefore: number; notAfter: number } {
  const cert = readNode(certDer, 0);
  const tbs = children(certDer, cert)[0] as DerNode;
  const fields = children(certDer, tbs);
  const base = fields[0]?.tag === 0xa0 ? 1 : 0;
  const validity = fields[base + 3] as DerNode;
  const [nb, na] = children(certDer, validity) as [DerNode, DerNode];
  return { notBefore: nb.tag, notAfter: na.tag };
}
