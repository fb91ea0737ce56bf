/**
 * One Azurite for the whole run, on free ports; its connection string reaches every test worker
 * through the environment (workers start after this runs). Tests that restart Azurite start their own.
 */
import { startAzurite, type Azurite } from './azurite';

declare global {
  var __WARDEN_AZURITE__: Azurite | undefined;
}

export default async function globalSetup(): Promise<void> {
  const azurite = await startAzurite();
  globalThis.__WARDEN_AZURITE__ = azurite;
  process.env.WARDEN_TEST_STORAGE = azurite.connectionString;
}
