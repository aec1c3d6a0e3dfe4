/**
 * A 53-bit digest of a string, kept per object instead of the string itself: what change
 * suppression compares is "is this the record the receiver already has", and a number of 8 bytes
 * answers that as well as the record's JSON of a few hundred. Two independent 32-bit multiply-xor
 * lanes folded into one safe integer: a false "unchanged" needs a 2^-53 collision on the same id.
 */
export const fingerprint = (text: string): number => {
  let a = 0xdeadbeef
  let b = 0x41c6ce57
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 2654435761)
    b = Math.imul(b ^ c, 1597334677)
  }
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909)
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909)
  return 4294967296 * (2097151 & b) + (a >>> 0)
}
