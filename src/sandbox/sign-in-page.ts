/** Server-rendered pages of the sandbox authority. No JavaScript; every value escaped. */

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
body{font-family:"Segoe UI",-apple-system,Helvetica,Arial,sans-serif;background:#f2f2f2;margin:0;color:#1b1b1b}
.box{max-width:440px;margin:60px auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
.logo{font-weight:600;color:#737373;margin-bottom:16px}
h1{font-size:24px;font-weight:600;margin:0 0 12px}
label{display:block;margin:14px 0 4px;font-size:14px}
input[type=text],input[type=email],input[type=password]{width:100%;box-sizing:border-box;padding:6px 0;border:0;border-bottom:1px solid #666;font-size:15px}
button{margin-top:22px;background:#0067b8;color:#fff;border:0;padding:8px 32px;font-size:15px;cursor:pointer}
button.secondary{background:#ccc;color:#000}
.error{color:#e81123;font-size:14px;margin:10px 0}
.perm{font-size:13px;color:#444}
.hint{font-size:12px;color:#666;margin-top:24px;border-top:1px solid #eee;padding-top:12px}
.banner{background:#fff4ce;font-size:12px;padding:6px 10px;margin-bottom:16px}
code{font-size:12px}`;

function layout(title: string, inner: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main class="box"><div class="logo">Microsoft (sandbox)</div>
<div class="banner">Offline Microsoft 365 sandbox: no real account is used.</div>
${inner}</main></body></html>`;
}

export interface SignInPageModel {
  action: string;
  hidden: Record<string, string>;
  appName: string;
  permissions: string[];
  loginHint?: string;
  error?: string;
  users: { upn: string; displayName: string }[];
  passwordHint: string;
  title?: string;
}

export function renderSignInPage(m: SignInPageModel): string {
  const hidden = Object.entries(m.hidden)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('\n');
  const perms = m.permissions.map((p) => `<li>${escapeHtml(p)}</li>`).join('');
  const users = m.users.map((u) => `<li><code>${escapeHtml(u.upn)}</code> (${escapeHtml(u.displayName)})</li>`).join('');
  return layout(m.title ?? 'Sign in to your account', `
<h1>${escapeHtml(m.title ?? 'Sign in')}</h1>
<p>to continue to <strong>${escapeHtml(m.appName)}</strong></p>
${m.error ? `<div class="error" role="alert" id="usernameError">${escapeHtml(m.error)}</div>` : ''}
<form method="post" action="${escapeHtml(m.action)}">
${hidden}
<label for="username">Email, phone, or Skype</label>
<input type="email" id="username" name="username" autocomplete="username" required value="${escapeHtml(m.loginHint ?? '')}">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<p class="perm">This app would like to:</p>
<ul class="perm" id="permissions">${perms}</ul>
<button type="submit" id="idSIButton9" name="action" value="signin">Sign in</button>
<button type="submit" class="secondary" name="action" value="cancel" formnovalidate>Cancel</button>
</form>
<div class="hint">Sandbox users (password <code>${escapeHtml(m.passwordHint)}</code>):<ul id="sandbox-users">${users}</ul></div>`);
}

export interface ErrorPageModel {
  code: number;
  text: string;
  requestId: string;
  correlationId: string;
  timestamp: string;
}

/** Entra's "Sorry, but we're having trouble signing you in." page for errors it cannot send to the app. */
export function renderErrorPage(m: ErrorPageModel): string {
  return layout('Sign in to your account', `
<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error-message">AADSTS${m.code}: ${escapeHtml(m.text)}</p>
<div class="hint"><div>Request Id: ${escapeHtml(m.requestId)}</div><div>Correlation Id: ${escapeHtml(m.correlationId)}</div>
<div>Timestamp: ${escapeHtml(m.timestamp)}</div></div>`);
}

export function renderMessagePage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);
}

export function renderDeviceCodePage(action: string, error?: string, userCode = ''): string {
  return layout('Enter code', `
<h1>Enter code</h1>
<p>Enter the code displayed on your app or device.</p>
${error ? `<div class="error" role="alert">${escapeHtml(error)}</div>` : ''}
<form method="post" action="${escapeHtml(action)}">
<label for="otc">Code</label>
<input type="text" id="otc" name="otc" required autocomplete="off" value="${escapeHtml(userCode)}">
<button type="submit" id="idSIButton9">Next</button>
</form>`);
}
