// Newline-delimited messages out of a byte stream, in time linear in the bytes: each chunk is searched
// once, from where the last line ended, and a line that spans chunks is joined once when its end comes.
// (Appending chunks to one string and searching it from the start again made a 32 MB configuration
// line take 18 s to read; joined once it takes milliseconds.) A newline byte never falls inside a
// multi-byte UTF-8 character, so lines are cut on bytes and decoded whole.

export class LineReader {
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;

  /** `maxLineBytes`: a longer line is an error, so a broken peer cannot make us buffer without end. */
  constructor(private readonly maxLineBytes: number) {}

  /**
   * The complete lines this chunk ends (empty ones left out), or an error when the unfinished line has
   * grown past the limit. `stop()` returning true ends the reading of this chunk (the stream is done).
   */
  push(chunk: Buffer, onLine: (line: string) => void, stop: () => boolean = () => false): Error | undefined {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(0x0a, start)) >= 0) {
      const tail = chunk.subarray(start, nl);
      const bytes = this.#pending.length === 0 ? tail : Buffer.concat([...this.#pending, tail], this.#pendingBytes + tail.length);
      this.#pending.length = 0;
      this.#pendingBytes = 0;
      start = nl + 1;
      const line = bytes.toString('utf8');
      if (line.trim() !== '') onLine(line);
      if (stop()) return undefined;
    }
    if (start < chunk.length) {
      this.#pending.push(chunk.subarray(start));
      this.#pendingBytes += chunk.length - start;
    }
    if (this.#pendingBytes > this.maxLineBytes) return new Error(`a line longer than ${this.maxLineBytes} bytes`);
    return undefined;
  }
}
