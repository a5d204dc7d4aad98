import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { confinementScript } from '../auth/confinement.ts';
import { requiredPermissions, type RequiredPermissions } from '../auth/permissions.ts';
import { AgentError, EXIT, loadConfig, type Config } from '../config/index.ts';
import { loadJobsFile } from '../config/jobs-file.ts';

const POLICY_USAGE = `Usage: mailbox-agent policy [--mailbox UPN] [--group ADDRESS] [--app-id ID]

Prints the Exchange Online PowerShell that confines the app (MS_CLIENT_ID) to one mailbox (MAILBOX):
RBAC for Applications, and the legacy ApplicationAccessPolicy, with a role for each Graph permission the
configured jobs need. --group names the mail-enabled security group of the access policy.`;

/**
 * `mailbox-agent policy`: the confinement commands for a tenant admin. Reads the config and jobs file when it can;
 * `--app-id` and `--mailbox` are enough when there is no configuration yet.
 */
export async function runPolicy(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let values;
  try {
    values = parseArgs({ args, strict: true, allowPositionals: false, options: { mailbox: { type: 'string' }, group: { type: 'string' }, 'app-id': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (error) {
    throw new AgentError('USAGE', (error as Error).message, { remedy: POLICY_USAGE });
  }
  if (values.help) {
    console.log(POLICY_USAGE);
    return EXIT.ok;
  }
  let config: Config | undefined;
  try {
    // A setup helper: an app-only setup without its credential or canary yet is what it is for.
    config = loadConfig(env, { forSetup: true });
  } catch (error) {
    if (!(values['app-id'] && values.mailbox)) throw error;
  }
  const appId = values['app-id'] ?? config?.clientId;
  const mailbox = (values.mailbox ?? config?.mailbox)?.toLowerCase();
  if (!appId) throw new AgentError('USAGE', 'Which app? MS_CLIENT_ID is not set.', { remedy: 'Set MS_CLIENT_ID in .env, or pass --app-id <application (client) id>.' });
  if (!mailbox || !/^[^@\s]+@[^@\s]+$/.test(mailbox)) {
    throw new AgentError('USAGE', mailbox ? `"${mailbox}" is not a mailbox address.` : 'Which mailbox? MAILBOX is not set.', { remedy: 'Set MAILBOX in .env, or pass --mailbox agent@contoso.com.' });
  }
  if (values.group !== undefined && !/^[^@\s]+@[^@\s]+$/.test(values.group)) {
    throw new AgentError('USAGE', `--group "${values.group}" is not a group's email address.`, { remedy: 'Pass the address of a mail-enabled security group, e.g. --group mailbox-agent@contoso.com.' });
  }
  let permissions: RequiredPermissions | undefined;
  if (config && existsSync(config.agentConfigPath)) permissions = requiredPermissions(await loadJobsFile(config.agentConfigPath));
  const granted = permissions?.application ?? [];
  console.log(`# mailbox-agent: confine app ${appId} to ${mailbox}`);
  console.log(permissions
    ? `# Graph application permissions the configured jobs need: ${granted.join(', ') || '(none)'}`
    : '# No jobs file read: Mail.ReadWrite assumed. Run from the agent\'s folder to get the exact list.');
  for (const need of permissions?.needs ?? []) console.log(`#   ${need.permission}: ${need.because.join('; ')}`);
  console.log(confinementScript({ appId, mailbox, group: values.group, permissions: granted }));
  return EXIT.ok;
}
