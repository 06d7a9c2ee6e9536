// The API stand-in's TokenReview: who a service-account token belongs to, from the tokens a test
// registers, answered as kube-apiserver answers.

import { randomUUID } from 'node:crypto';

export interface ReviewToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly audiences: readonly string[];
}

export type TokenReviewBody = { spec?: { token?: string; audiences?: string[] } };

export function tokenReview(body: TokenReviewBody | null, tokens: ReadonlyMap<string, ReviewToken>): Record<string, unknown> {
  const token = body?.spec?.token ?? '';
  const wanted = body?.spec?.audiences ?? [];
  const known = tokens.get(token);
  // Like kube-apiserver: authenticated only if the token is valid for one of the asked audiences.
  const audiences = known ? (wanted.length === 0 ? [...known.audiences] : wanted.filter((a) => known.audiences.includes(a))) : [];
  const ok = known !== undefined && audiences.length > 0;
  return {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    metadata: { creationTimestamp: null },
    spec: body?.spec ?? {},
    status: ok
      ? { authenticated: true, audiences, user: { username: `system:serviceaccount:${known.namespace}:${known.serviceAccount}`, uid: randomUUID(), groups: ['system:serviceaccounts', `system:serviceaccounts:${known.namespace}`, 'system:authenticated'] } }
      : { user: {}, error: '[invalid bearer token, token lookup failed]' },
  };
}
