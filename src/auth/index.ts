export { DelegatedAuth, DELEGATED_SCOPES, MSA_TENANT_ID, pinnedSegment, type PendingSignin } from './delegated.ts';
export { classifyTokenError, aadstsCode, type ClassifiedFailure } from './entra-errors.ts';
export type { TokenProvider, AccountInfo, AuthStatus, AuthProblem } from './types.ts';
