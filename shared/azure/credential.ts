/**
 * The app's identity. `default` is managed identity in Azure (or developer sign-in locally) through
 * `@azure/identity`; `emulator` is a static token that only ever goes to loopback endpoints.
 */
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { InputError } from '../errors';
import { isLoopbackUrl, type Settings } from '../settings';

/** A fixed bearer token for the local emulator. It is refused for any non-loopback URL. */
export class EmulatorCredential implements TokenCredential {
  constructor(private readonly token = 'warden-emulator-token') {}
  async getToken(): Promise<AccessToken> {
    return { token: this.token, expiresOnTimestamp: Date.now() + 3600_000 };
  }
}

/** Throws unless `url` may be used with the configured credential. */
export function assertEndpointAllowed(settings: Pick<Settings, 'credential'>, url: string, what: string): void {
  if (settings.credential === 'emulator' && !isLoopbackUrl(url)) {
    throw new InputError('EmulatorCredentialRefused', `The emulator credential is accepted only for loopback endpoints; ${what} ${url} is not one.`);
  }
}

export async function createCredential(settings: Pick<Settings, 'credential' | 'managedIdentityClientId' | 'endpoints'>): Promise<TokenCredential> {
  if (settings.credential === 'emulator') return new EmulatorCredential();
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential({
    authorityHost: settings.endpoints.authority,
    ...(settings.managedIdentityClientId ? { managedIdentityClientId: settings.managedIdentityClientId } : {}),
  });
}
