/** The one seam between auth and everything that calls Graph: delegated and app-only look the same. */
export interface TokenProvider {
  readonly mode: 'delegated' | 'app-only';
  /** A bearer token for Graph; `forceRefresh` after Graph answered 401. */
  getAccessToken(options?: { forceRefresh?: boolean }): Promise<string>;
  status(): Promise<AuthStatus>;
}

export interface AccountInfo {
  upn: string;
  oid: string;
  tid: string;
  name?: string;
  signedInAt: number;
}

export interface AuthProblem {
  kind: 'needs-signin' | 'config' | 'transient';
  reason: string;
  remedy: string;
  aadsts?: number;
  error?: string;
  at: number;
}

export interface AuthStatus {
  mode: 'delegated' | 'app-only';
  state: 'signed-out' | 'ready' | 'needs-signin';
  account: { upn: string; oid: string; tid: string } | null;
  reason?: string;
  remedy?: string;
  accessTokenExpiresAt?: string;
  /** Delegated: the scopes the token response granted (its `scope`), when it named them. */
  grantedScopes?: string[];
  lastRefreshAt?: string;
  refreshTokenIssuedAt?: string;
  /** Days since the stored refresh token was issued (Entra: it dies after 90 days unused). */
  refreshTokenAgeDays?: number;
  /** When the keep-alive refreshes next if nothing else does (KEEPALIVE_DAYS after the last refresh). */
  nextKeepAliveAt?: string;
}
