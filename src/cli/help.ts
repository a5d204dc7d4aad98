/** `mailbox-agent <command> --help`: what the command does, its options, examples, and exit codes. */
const EXITS = 'Exit status: 0 ok, 1 failed, 2 a person is needed (sign-in, confinement), 64 usage error.';

export const COMMAND_HELP: Record<string, string> = {
  start: `Usage: mailbox-agent start

Runs the web UI (http://HOST:PORT, 127.0.0.1:3000 by default) and the scheduler that fires
every job of the jobs file on its cron schedule. With MS_CLIENT_ID unset it also runs the
built-in Microsoft 365 sandbox and says so on its first log line. Stops cleanly on SIGTERM or
Ctrl-C: no new runs start, a running job finishes its current page, the store is closed.

Example:
  npm start`,
  run: `Usage: mailbox-agent run <job> [--dry-run] [--json]

Runs one job of the jobs file once, now, and prints what it did.
  --dry-run   evaluate the rules and report every action it would take, writing nothing
  --json      print one JSON object: {job, ok, dryRun, examined, actions, graphRequests, error?}

Examples:
  mailbox-agent run triage --dry-run
  mailbox-agent run triage --json | jq '.actions | length'

${EXITS}`,
  explain: `Usage: mailbox-agent explain <job> [--message ID | --subject TEXT | --last N] [--json]

For each message, every rule of an inbox-rules job in order, matched or not, with the key that
decided it ("fromDomain news.example.com matched sender news@news.example.com"), and the actions
it would take. Reads the mailbox only; changes nothing.
  --message ID    that one message (its id, e.g. from run --json)
  --subject TEXT  the newest messages of the job's folder whose subject contains TEXT (up to N)
  --last N        the N newest messages of the job's folder (default 10)
  --json          print {job, messages: [{messageId, subject, from, receivedDateTime, rules: [{rule, matched, because, actions}]}]}

Examples:
  mailbox-agent explain triage --subject invoice
  mailbox-agent explain triage --last 3 --json

${EXITS}`,
  status: `Usage: mailbox-agent status [--json]

Who is signed in, the token's state (with the reason and what to do when a person is needed),
and every job with its schedule, next run and last result.
  --json      the same JSON as GET /api/status

Examples:
  mailbox-agent status
  mailbox-agent status --json | jq .state

${EXITS} (2 when a sign-in is needed)`,
  signin: `Usage: mailbox-agent signin --device

Signs in on a machine without a browser: prints a URL and a code to enter on any other
device, waits for you to finish there, then stores the account like a browser sign-in.

Example:
  mailbox-agent signin --device

${EXITS}`,
  signout: `Usage: mailbox-agent signout

Forgets every token of the account (the account record too, so another person may sign in).
It also tells you how to revoke the app's consent at Microsoft.

${EXITS}`,
  doctor: `Usage: mailbox-agent doctor

A checklist with ✓ or ✗ and the fix for each ✗: configuration, the identity provider's
metadata, Microsoft Graph, the token, the permissions your jobs need, certificate and secret
expiry, and (app-only) the confinement to one mailbox.

${EXITS}`,
  cert: `Usage: mailbox-agent cert create [--out DIR] [--days N]

App-only: creates a self-signed RSA certificate and key (PEM, key file mode 0600), prints
their SHA-1 and SHA-256 thumbprints and writes the keyCredentials JSON for the app manifest.
  --out DIR   where to write the files (default: data/)
  --days N    validity in days

Example:
  mailbox-agent cert create --out ./certs --days 365

${EXITS}`,
  policy: `Usage: mailbox-agent policy [--mailbox UPN] [--group ADDRESS]

App-only: prints the Exchange Online PowerShell that confines the app to one mailbox, both
with RBAC for Applications and with an ApplicationAccessPolicy.
  --mailbox UPN     the mailbox the agent may touch (default: MAILBOX)
  --group ADDRESS   the mail-enabled security group for an ApplicationAccessPolicy

Example:
  mailbox-agent policy --mailbox me@contoso.com

${EXITS}`,
  sandbox: `Usage: mailbox-agent sandbox

Runs the offline Microsoft 365 sandbox alone, on https://127.0.0.1:SANDBOX_PORT (3100), with
its own certificate authority in data/sandbox/. Seeded users: alice@contoso.test and
bob@contoso.test, password "sandbox".`,
};

/** Help for one command, or undefined for an unknown one. */
export function helpFor(command: string): string | undefined {
  return COMMAND_HELP[command];
}
