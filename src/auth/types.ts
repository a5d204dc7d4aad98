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
  /**
   * A condition that may clear by itself (Conditional Access, MFA demand, missing consent): the refresh token is
   * kept, and tried again from this time on (epoch ms), at most hourly.
   */
  retryAt?: number;
}

export interface AuthStatus {
  mode: 'delegated' | 'app-only';
  /** needs-config: a person must change the configuration or the app registration; a new sign-in would not help. */
  state: 'signed-out' | 'ready' | 'needs-signin' | 'needs-config';
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
  /** needs-signin with the refresh token kept: when the agent tries it again by itself. */
  nextAttemptAt?: string;
}
