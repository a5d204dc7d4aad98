import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import type { SandboxContext } from './context.ts';
import { findApp, findUser, type AppRegistration } from './directory.ts';

/**
 * What a tenant admin configures around an app-only app, as the sandbox keeps it:
 * - certificates registered on the app (keyCredentials), for client assertions;
 * - the Entra application permissions actually granted (admin consent), which may be fewer than the registration's;
 * - whether the client secret has expired (AADSTS7000222);
 * - an ApplicationAccessPolicy and an RBAC-for-Applications scope, each off, "propagating" (created but not yet
 *   enforced: real ones take from minutes to hours [MICROSOFT.md "Confining app-only access"]) or on.
 * Kept inside the persisted state (state.json) under `accessControl`.
 */

export type EnforcementState = 'on' | 'propagating';

export interface RegisteredCertificate {
  keyId: string;
  thumbprintSha1: string;
  /** base64url SHA-256 of the DER (what `x5t#S256` carries). */
  x5tS256: string;
  /** base64url SHA-1 of the DER (what `x5t` carries). */
  x5t: string;
  certPem: string;
  notBefore: string;
  notAfter: string;
}

export interface ScopedGrant {
  mailboxes: string[];
  state: EnforcementState;
}

export interface RbacAssignment extends ScopedGrant {
  /** Graph permissions granted through "Application <permission>" roles within the scope. */
  roles: string[];
}

export interface AccessControlData {
  certificates: Record<string, RegisteredCertificate[]>;
  /** clientId -> the application permissions with admin consent; absent = the registration's. */
  grantedRoles: Record<string, string[]>;
  expiredSecrets: string[];
  accessPolicies: Record<string, ScopedGrant>;
  rbac: Record<string, RbacAssignment>;
}

export function accessControlOf(ctx: SandboxContext): AccessControlData {
  const data = ctx.state.data as typeof ctx.state.data & { accessControl?: AccessControlData };
  data.accessControl ??= { certificates: {}, grantedRoles: {}, expiredSecrets: [], accessPolicies: {}, rbac: {} };
  return data.accessControl;
}

function appOrThrow(clientId: string): AppRegistration {
  const app = findApp(clientId);
  if (!app) throw new Error(`No sandbox app '${clientId}'.`);
  return app;
}

function mailboxesOrThrow(upns: string[]): string[] {
  return upns.map((u) => {
    const user = findUser(u);
    if (!user) throw new Error(`No sandbox mailbox '${u}'.`);
    return user.upn;
  });
}

/**
 * Registers a certificate on a confidential app, from a PEM certificate or the base64 DER `key` of a manifest
 * keyCredentials entry (what `mailbox-agent cert create` writes).
 */
export function registerCertificate(ctx: SandboxContext, clientId: string, input: { pem?: string; key?: string }): RegisteredCertificate {
  const app = appOrThrow(clientId);
  if (app.publicClient) throw new Error(`'${clientId}' is a public client; certificates go on a confidential app.`);
  const pem = input.pem ?? (input.key ? `-----BEGIN CERTIFICATE-----\n${input.key.replace(/\s+/g, '').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n` : undefined);
  if (!pem) throw new Error('give pem (a PEM certificate) or key (base64 DER, as in keyCredentials)');
  const x509 = new X509Certificate(pem);
  const bits = x509.publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) throw new Error(`the key has ${bits} bits; Entra requires at least 2048`);
  const der = x509.raw;
  const cert: RegisteredCertificate = {
    keyId: randomUUID(),
    thumbprintSha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
    x5tS256: createHash('sha256').update(der).digest('base64url'),
    x5t: createHash('sha1').update(der).digest('base64url'),
    certPem: x509.toString(),
    notBefore: new Date(x509.validFrom).toISOString(),
    notAfter: new Date(x509.validTo).toISOString(),
  };
  const ac = accessControlOf(ctx);
  const list = (ac.certificates[app.clientId] ??= []).filter((c) => c.x5tS256 !== cert.x5tS256);
  list.push(cert);
  ac.certificates[app.clientId] = list;
  ctx.state.changed();
  return cert;
}

export function removeCertificates(ctx: SandboxContext, clientId: string): void {
  delete accessControlOf(ctx).certificates[appOrThrow(clientId).clientId];
  ctx.state.changed();
}

export function certificatesOf(ctx: SandboxContext, clientId: string): RegisteredCertificate[] {
  return accessControlOf(ctx).certificates[clientId.toLowerCase()] ?? [];
}

/** Sets the application permissions with admin consent (null: back to the registration's). */
export function setGrantedRoles(ctx: SandboxContext, clientId: string, roles: string[] | null): void {
  const app = appOrThrow(clientId);
  const ac = accessControlOf(ctx);
  if (roles === null) delete ac.grantedRoles[app.clientId];
  else ac.grantedRoles[app.clientId] = [...roles];
  ctx.state.changed();
}

export function grantedRolesOf(ctx: SandboxContext, app: AppRegistration): string[] {
  return accessControlOf(ctx).grantedRoles[app.clientId] ?? app.application;
}

export function setSecretExpired(ctx: SandboxContext, clientId: string, expired: boolean): void {
  const app = appOrThrow(clientId);
  const ac = accessControlOf(ctx);
  ac.expiredSecrets = ac.expiredSecrets.filter((c) => c !== app.clientId);
  if (expired) ac.expiredSecrets.push(app.clientId);
  ctx.state.changed();
}

export function secretExpired(ctx: SandboxContext, clientId: string): boolean {
  return accessControlOf(ctx).expiredSecrets.includes(clientId.toLowerCase());
}

/** ApplicationAccessPolicy (RestrictAccess to `mailboxes`): null removes it. */
export function setAccessPolicy(ctx: SandboxContext, clientId: string, grant: { mailboxes: string[]; state?: EnforcementState } | null): void {
  const app = appOrThrow(clientId);
  const ac = accessControlOf(ctx);
  if (grant === null) delete ac.accessPolicies[app.clientId];
  else ac.accessPolicies[app.clientId] = { mailboxes: mailboxesOrThrow(grant.mailboxes), state: grant.state ?? 'on' };
  ctx.state.changed();
}

/** RBAC for Applications: management scope `mailboxes` with "Application <role>" assignments; null removes it. */
export function setRbacScope(ctx: SandboxContext, clientId: string, grant: { mailboxes: string[]; roles: string[]; state?: EnforcementState } | null): void {
  const app = appOrThrow(clientId);
  const ac = accessControlOf(ctx);
  if (grant === null) delete ac.rbac[app.clientId];
  else ac.rbac[app.clientId] = { mailboxes: mailboxesOrThrow(grant.mailboxes), roles: [...grant.roles], state: grant.state ?? 'on' };
  ctx.state.changed();
}

export interface MailboxDecision {
  /** Permissions the app holds on this mailbox. */
  roles: string[];
  /** When set, the 403 to answer before any permission check. */
  deny?: { code: string; message: string };
}

/**
 * How Exchange decides an app-only call on `/users/{upn}/…`: the token's unscoped Entra roles, plus RBAC roles when
 * the mailbox is in an enforced RBAC scope; an enforced ApplicationAccessPolicy blocks mailboxes outside its group.
 * Error bodies: MICROSOFT.md ("Access to OData is disabled.: [RAOP] …" observed; RBAC's ExtensionError observed).
 */
export function decideMailboxAccess(ctx: SandboxContext, appId: string, tokenRoles: string[], upn: string): MailboxDecision {
  const ac = accessControlOf(ctx);
  const policy = ac.accessPolicies[appId];
  const legacy = ctx.state.data.appAccessPolicy?.[appId];
  if (legacy && !legacy.map((x) => x.toLowerCase()).includes(upn)) {
    return { roles: [], deny: { code: 'ErrorAccessDenied', message: 'Access to OData is disabled.: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.' } };
  }
  if (policy?.state === 'on' && !policy.mailboxes.includes(upn)) {
    return { roles: [], deny: { code: 'ErrorAccessDenied', message: 'Access to OData is disabled.: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.' } };
  }
  const rbac = ac.rbac[appId];
  const scoped = rbac?.state === 'on' && rbac.mailboxes.includes(upn) ? rbac.roles : [];
  const roles = [...new Set([...tokenRoles, ...scoped])];
  if (rbac?.state === 'on' && !roles.some((r) => /^(Mail|MailboxSettings|Calendars|Contacts)\./.test(r))) {
    return { roles, deny: { code: 'ExtensionError', message: 'Operation: Read; Exception: [Status: AccessDenied, Message: "Access is denied. Check credentials and try again."]' } };
  }
  return { roles };
}
