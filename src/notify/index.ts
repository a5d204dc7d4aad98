export { Notifier, type Notice, type NotifierOptions, type NotifyEventInput, type NotifyPayload, type NotifySink } from './notifier.ts';
