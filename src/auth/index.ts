export { DelegatedAuth, DELEGATED_SCOPES, MSA_TENANT_ID, pinnedSegment, type PendingSignin } from './delegated.ts';
export { classifyTokenError, aadstsCode, type ClassifiedFailure } from './entra-errors.ts';
export type { TokenProvider, AccountInfo, AuthStatus, AuthProblem } from './types.ts';
export { AppOnlyAuth, createAppOnly, storeCachePlugin, networkClientOver, type AppOnlyWiring, type AppTokenFacts, type CredentialInfo } from './app-only.ts';
export { ConfinementGuard, confinedTokens, confinementScript, type ConfinementProof, type ConfinementState } from './confinement.ts';
export { requiredPermissions, type RequiredPermissions, type GraphPermission } from './permissions.ts';
