// A request body that streams to the upstream while a copy of it is kept, up to a limit, so that a
// retry or a mirror can send it again. Whether a body is small enough is only known once it has been
// read: a chunked HTTP/1 body or an HTTP/2 (gRPC) one has no Content-Length to tell in advance.
// Each attempt reads what is held first, then goes on reading the request; every chunk read is held
// before any attempt sees it, so an attempt that is cancelled while it waits loses nothing for the
// next one. A body that outgrows the limit drops its copy: only the attempt in flight can finish it,
// and the request is no longer retried (Envoy gives up retries the same way once its buffer is full).

export class ReplayBody {
  readonly #source: AsyncIterator<Buffer>;
  readonly #limit: number;
  /** Every chunk read so far, while the body fits the limit; undefined once it did not. */
  #held: Buffer[] | undefined = [];
  #size = 0;
  #ended = false;
  #failure: unknown;
  #reading: Promise<Buffer | undefined> | undefined;
  #complete: Promise<Buffer | undefined> | undefined;
  #settle: ((body: Buffer | undefined) => void) | undefined;

  constructor(source: AsyncIterable<Buffer>, limit: number) {
    this.#source = source[Symbol.asyncIterator]();
    this.#limit = limit;
  }

  /** True while every byte read so far is held, so another attempt can send the whole body. */
  get replayable(): boolean {
    return this.#held !== undefined && this.#failure === undefined;
  }

  /** The whole body once it has been read, or undefined when it outgrew the limit or broke off. */
  complete(): Promise<Buffer | undefined> {
    if (this.#ended) return Promise.resolve(this.#held && Buffer.concat(this.#held));
    if (!this.replayable) return Promise.resolve(undefined);
    this.#complete ??= new Promise((resolve) => (this.#settle = resolve));
    return this.#complete;
  }

  /** The body for one attempt: a Buffer when it has been read whole already, else a stream. */
  forAttempt(): Buffer | AsyncIterable<Buffer> {
    if (this.#ended && this.#held) return Buffer.concat(this.#held);
    return this.#stream();
  }

  async *#stream(): AsyncGenerator<Buffer> {
    let next = 0;
    for (;;) {
      const held = this.#held;
      if (held && next < held.length) {
        yield held[next++]!;
        continue;
      }
      if (this.#ended) return;
      const chunk = await this.#read();
      if (chunk === undefined) return;
      // It was appended where this attempt stood (it had caught up with the copy before reading).
      if (this.#held) next++;
      yield chunk;
    }
  }

  /** One chunk from the request, shared by whichever attempts ask while it is on its way. */
  #read(): Promise<Buffer | undefined> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    this.#reading ??= this.#source.next().then(
      (r) => {
        this.#reading = undefined;
        if (r.done) {
          this.#ended = true;
          this.#settle?.(this.#held && Buffer.concat(this.#held));
          return undefined;
        }
        const chunk = r.value;
        if (this.#held) {
          this.#size += chunk.length;
          if (this.#size <= this.#limit) this.#held.push(chunk);
          else this.#drop();
        }
        return chunk;
      },
      (err: unknown) => {
        this.#reading = undefined;
        this.#failure = err ?? new Error('request body failed');
        this.#drop();
        throw err;
      },
    );
    return this.#reading;
  }

  #drop(): void {
    this.#held = undefined;
    this.#settle?.(undefined);
  }
}
