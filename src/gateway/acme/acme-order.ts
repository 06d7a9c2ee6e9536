// One ACME order from start to certificate: the issuer's account key (made once, kept where its
// `privateKeySecretRef` points: `<certsDir>/<name>/tls.key`), a fresh key and CSR for the names, and
// acme-client's `auto()` with HTTP-01, whose answers go to the challenge board the gateway's plain
// HTTP listeners read (every process and replica of the gateway, challenge-board.ts).

import { chmod, link, mkdir, readFile, rm, rmdir, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import acme from 'acme-client';
import type { Agent } from 'node:https';
import type { KeyAlgorithm } from '../../core/model/cert-manager.js';
import { probeDirectory } from './acme-trust.js';
import type { AccountKeyLocation } from './wanted-certificates.js';
import type { ChallengeBoard } from './challenge-board.js';

export interface OrderRequest {
  readonly directoryUrl: string;
  readonly agent: Agent | undefined;
  readonly email?: string;
  readonly accountKeyPem: string;
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly key: { readonly algorithm: KeyAlgorithm; readonly size: number };
  readonly preferredChain?: string;
  readonly challenges: ChallengeBoard;
  /** A stuck ACME server must not hold the certificate's schedule forever. */
  readonly timeoutMs: number;
  /** First wait before polling a pending challenge or order again (doubles up to 30 s). */
  readonly pollMs: number;
  /**
   * Whether this process still orders (it holds the ACME Lease): asked before each challenge is
   * declared ready and before the order is finalized, so an order whose Lease moved to another
   * replica stops there instead of issuing a second certificate for the same names.
   */
  readonly stillOrdering?: () => boolean;
}

export interface Issued {
  /** Full chain, leaf first. */
  readonly certPem: string;
  readonly keyPem: string;
}

const CURVES: Readonly<Record<number, 'P-256' | 'P-384' | 'P-521'>> = { 256: 'P-256', 384: 'P-384', 521: 'P-521' };

export async function orderCertificate(req: OrderRequest): Promise<Issued> {
  await probeDirectory(req.directoryUrl, req.agent);
  const keyPem =
    req.key.algorithm === 'ECDSA'
      ? await acme.crypto.createPrivateEcdsaKey(CURVES[req.key.size] ?? 'P-256')
      : await acme.crypto.createPrivateRsaKey(req.key.size);
  const [, csr] = await acme.crypto.createCsr({ commonName: req.commonName, altNames: [...req.dnsNames] }, keyPem);
  const client = new acme.Client({ directoryUrl: req.directoryUrl, accountKey: req.accountKeyPem, backoffMin: req.pollMs, backoffMax: 30_000 });
  const tokens: string[] = [];
  const unfinished = 'left unfinished: this process no longer orders (closed, or the ACME Lease moved to another replica)';
  const checkStillOrdering = (): void => {
    if (req.stillOrdering && !req.stillOrdering()) throw new Error(unfinished);
  };
  // An order this process no longer owns sends nothing more. acme-client polls and retries with
  // timers of up to a minute each; its next request is left pending for ever instead (a promise holds
  // no handle), so a closed gateway is not kept alive polling, and the race below ends the order now.
  let abandon: (err: Error) => void = () => undefined;
  const abandoned = new Promise<never>((_, reject) => (abandon = reject));
  const http = (client as unknown as { http: { request: (...args: unknown[]) => Promise<unknown> } }).http;
  const request = http.request.bind(http);
  http.request = (...args) => {
    if (!req.stillOrdering || req.stillOrdering()) return request(...args);
    abandon(new Error(unfinished));
    return new Promise(() => undefined);
  };
  // auto() has no hook between the last valid challenge and finalization: this client's own
  // finalizeOrder asks first.
  const finalizeOrder = client.finalizeOrder.bind(client);
  client.finalizeOrder = async (order, csr) => {
    checkStillOrdering();
    return finalizeOrder(order, csr);
  };
  const order = client.auto({
    csr,
    ...(req.email ? { email: req.email } : {}),
    termsOfServiceAgreed: true,
    challengePriority: ['http-01'],
    // The gateway serves the token itself; acme-client's own pre-check would fetch it on port 80
    // through the system resolver, which says nothing about whether the CA can reach us.
    skipChallengeVerification: true,
    ...(req.preferredChain ? { preferredChain: req.preferredChain } : {}),
    challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
      if (challenge.type !== 'http-01') throw new Error(`challenge type ${challenge.type} is not supported; only http-01`);
      checkStillOrdering();
      tokens.push(challenge.token);
      // acme-client tells the ACME server the challenge is ready when this resolves: by then every
      // process and replica of the gateway must be able to answer it.
      await req.challenges.publish(challenge.token, keyAuthorization);
    },
    challengeRemoveFn: async (_authz, challenge) => {
      const i = tokens.indexOf(challenge.token);
      if (i >= 0) tokens.splice(i, 1);
      await req.challenges.withdraw(challenge.token);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the order did not finish within ${Math.round(req.timeoutMs / 1000)} s`)), req.timeoutMs);
  });
  try {
    const certPem = await Promise.race([order, timeout, abandoned]);
    return { certPem, keyPem: keyPem.toString() };
  } finally {
    clearTimeout(timer);
    // A failed order leaves its tokens behind otherwise. Best effort: a token left over is only
    // answered until the next orderer prunes it (secret-challenges.ts).
    await Promise.all(tokens.map((t) => req.challenges.withdraw(t).catch(() => undefined)));
    order.catch(() => undefined); // settles after a timeout; nothing is waiting any more
    abandoned.catch(() => undefined);
  }
}

/** acme-client's own errors read well; its transport failures do not. */
export function describeAcmeError(err: unknown): string {
  if (err instanceof TypeError && /reading '(config|status)'/.test(err.message)) return 'lost the connection to the ACME server during the order';
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}

export interface AccountKey {
  readonly pem: string;
  readonly file: string;
  /** What happened on the way, worth a log line: made anew, or moved from the old place. */
  readonly note?: string;
}

/**
 * The account key of one issuer: read; else moved from where older releases kept it, so the ACME
 * account is not lost; else made and stored (0600 in a 0700 folder). Two orders for the same issuer
 * may race here; hard links make the first writer win and the other read its key.
 */
export async function accountKey(certsDir: string, at: AccountKeyLocation): Promise<AccountKey> {
  const dir = join(certsDir, at.secretName);
  const file = join(dir, at.key);
  const existing = await readIfThere(file);
  if (existing) return { pem: existing, file };
  await mkdir(dir, { recursive: true, mode: 0o700 });

  const legacyDir = join(certsDir, 'acme', at.legacyFolder);
  const legacy = join(legacyDir, 'account.key');
  if (await linkOnce(legacy, file)) {
    await chmod(file, 0o600);
    await unlink(legacy);
    await rmdir(legacyDir).catch(() => undefined); // only when empty
    await rmdir(join(certsDir, 'acme')).catch(() => undefined);
    return { pem: await readFile(file, 'utf8'), file, note: `moved the ACME account key from ${legacy} to ${file} (privateKeySecretRef)` };
  }

  // ECDSA P-256: generated in a millisecond, and every ACME CA accepts ES256 account keys.
  const pem = (await acme.crypto.createPrivateEcdsaKey()).toString();
  const tmp = join(dir, `.${at.key}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(tmp, pem, { mode: 0o600 });
  try {
    return (await linkOnce(tmp, file)) ? { pem, file, note: `created the ACME account key ${file}` } : { pem: await readFile(file, 'utf8'), file };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Hard-links `from` to `to` unless `to` exists; false when `from` is missing or `to` was there. */
async function linkOnce(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOENT') return false;
    throw err;
  }
}

async function readIfThere(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}
