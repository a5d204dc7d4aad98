export { GraphClient, toPage, type GraphPage, type GraphResponse, type GraphClientOptions } from './client.ts';
export { GraphError } from './graph-error.ts';
export { Mailbox, RULE_SELECT, WELL_KNOWN_FOLDERS, type GraphMessage, type MailFolder } from './mailbox.ts';
export { exponentialRetry, isIdempotent, mayHaveRun, mayResend, parseRetryAfter, type Failure, type RetryPolicy } from './retry-policy.ts';
