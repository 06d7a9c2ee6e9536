// Counts the messages of a gRPC stream as its body passes, for istio_request_messages_total and
// istio_response_messages_total (Envoy's grpc_stats filter counts the same way): a gRPC body is a
// sequence of length-prefixed messages, one flag byte and a 4-byte big-endian length, then that many
// bytes. The counter only reads the 5-byte prefixes and skips over the rest, whatever the chunking.

export class GrpcMessageCounter {
  /** Messages whose prefix has been read. */
  count = 0;
  /** Bytes of the current message still to skip. */
  private skip = 0;
  /** Prefix bytes read so far of the next message (0–4), and the length they spell. */
  private prefixRead = 0;
  private length = 0;

  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.byteLength;
    while (i < n) {
      if (this.skip > 0) {
        const step = Math.min(this.skip, n - i);
        this.skip -= step;
        i += step;
        continue;
      }
      const b = chunk[i++]!;
      // Byte 0 is the compression flag; bytes 1–4 the length.
      if (this.prefixRead > 0) this.length = this.length * 256 + b;
      if (++this.prefixRead === 5) {
        this.count++;
        this.skip = this.length;
        this.prefixRead = 0;
        this.length = 0;
      }
    }
  }
}
