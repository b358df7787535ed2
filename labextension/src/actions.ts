/**
 * What the buttons and the commands do to the active kernel, with one way of reporting
 * failures: the sidebar's error line, and a notification for commands run from elsewhere.
 */
import { Notification } from '@jupyterlab/apputils';

import type { SaibenchConnection } from './connection';
import type { IOps, Op } from './protocol';

/**
 * Send a request; on an error reply, show it (sidebar and notification) and resolve null.
 */
export async function act<K extends Op>(
  connection: SaibenchConnection,
  op: K,
  args: IOps[K]['args']
): Promise<IOps[K]['result'] | null> {
  connection.clearError();
  try {
    return await connection.request(op, args);
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    connection.reportError(message);
    Notification.error(`SAIBench ${op}: ${message}`, { autoClose: 8000 });
    return null;
  }
}

/** Discover again: the reply is the new state. */
export function discover(connection: SaibenchConnection): Promise<unknown> {
  return act(connection, 'discover', {});
}

/** Start a run of these scenario ids (null: every scenario). */
export async function runScenarios(
  connection: SaibenchConnection,
  scenarios: string[] | null
): Promise<number | null> {
  const result = await act(connection, 'run', { scenarios });
  if (result !== null) {
    connection.refresh();
  }
  return result?.run ?? null;
}

/** Cancel a run (null: the last one). */
export async function cancelRun(
  connection: SaibenchConnection,
  run: number | null = null
): Promise<string | null> {
  const result = await act(connection, 'cancel', { run });
  if (result !== null) {
    connection.refresh();
  }
  return result?.status ?? null;
}
