/** Shared by the Graph emulator tests: the TLS material to serve and the GraphError a call rejects with. */
import { GraphError } from '@microsoft/microsoft-graph-client';
export { tlsFromEnv as tls } from '../helpers/emulator';

/** The GraphError `p` rejects with (fails the test when it resolves or rejects with something else). */
export async function graphError(p: Promise<unknown>): Promise<GraphError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GraphError) return err;
    throw err;
  }
  throw new Error('expected a GraphError');
}
