/** Redis Cluster's hash slots: CRC16 (XMODEM) of the key's hash tag, modulo 16384. */
export const SLOTS = 16_384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The slot of a key: only the part between the first `{` and the next `}` counts, when not empty. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open >= 0 ? key.indexOf('}', open + 1) : -1;
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  return crc16(Buffer.from(hashed)) % SLOTS;
}

/**
 * A hash tag for shard `index` of `count` whose slot lies in the index-th of
 * `count` equal slot ranges: a cluster whose masters split the slots evenly
 * (as `redis-cli --cluster create` and managed services do) puts each shard
 * on a master of its own when there are as many masters as shards. `base`
 * is tried first, then `base~1`, `base~2`...
 */
export function spreadTag(base: string, index: number, count: number): string {
  const from = Math.floor((index * SLOTS) / count);
  const to = Math.floor(((index + 1) * SLOTS) / count);
  for (let salt = 0; ; salt++) {
    const tag = salt === 0 ? base : `${base}~${salt}`;
    const slot = keySlot(`{${tag}}`);
    if (slot >= from && slot < to) return tag;
  }
}
