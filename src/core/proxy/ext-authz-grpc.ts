// placeholder
import type { ExtAuthzGrpcProvider } from '../policy/ext-authz-providers.js';
import type { CheckContext, CheckOutcome, CheckSubject } from './ext-authz-check.js';
export function checkGrpc(_p: ExtAuthzGrpcProvider, _s: CheckSubject, _c: CheckContext): Promise<CheckOutcome> {
  return Promise.resolve({ kind: 'error', reason: 'grpc' });
}
